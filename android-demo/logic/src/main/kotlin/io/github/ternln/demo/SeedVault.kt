package io.github.ternln.demo

import java.io.File
import java.io.FileOutputStream
import java.io.IOException
import java.security.SecureRandom
import javax.crypto.Cipher
import javax.crypto.SecretKey
import javax.crypto.spec.GCMParameterSpec

/**
 * The wallet's 32-byte seed in a file encrypted with AES-GCM under a key that never leaves
 * [key]'s provider: on Android a non-exportable Android Keystore key (the app's glue), in the
 * JVM tests a software key. The same `javax.crypto` calls serve both: the IV is the one the
 * cipher generates (the Keystore insists on it).
 *
 * File: `TSD1`, the IV's length (1 byte), the IV, the ciphertext with its tag. Written to a temp
 * file, fsynced, then renamed, so a kill leaves either no seed or a whole one.
 */
class SeedVault(private val file: File, private val key: () -> SecretKey) {
    fun exists(): Boolean = file.exists()

    /** The seed, created (and stored) on first use. */
    fun loadOrCreate(): ByteArray = if (exists()) load() else ByteArray(32).also {
        SecureRandom().nextBytes(it)
        store(it)
    }

    fun load(): ByteArray {
        val bytes = file.readBytes()
        if (bytes.size < 6 || String(bytes, 0, 4, Charsets.US_ASCII) != MAGIC) throw IOException("not a seed file: $file")
        val ivLen = bytes[4].toInt() and 0xff
        if (bytes.size < 5 + ivLen + TAG_BYTES) throw IOException("truncated seed file: $file")
        val iv = bytes.copyOfRange(5, 5 + ivLen)
        val cipher = Cipher.getInstance(TRANSFORMATION)
        cipher.init(Cipher.DECRYPT_MODE, key(), GCMParameterSpec(TAG_BYTES * 8, iv))
        cipher.updateAAD(MAGIC.toByteArray(Charsets.US_ASCII))
        return cipher.doFinal(bytes, 5 + ivLen, bytes.size - 5 - ivLen)
    }

    fun store(seed: ByteArray) {
        require(seed.size == 32) { "a seed is 32 bytes, not ${seed.size}" }
        val cipher = Cipher.getInstance(TRANSFORMATION)
        cipher.init(Cipher.ENCRYPT_MODE, key())
        cipher.updateAAD(MAGIC.toByteArray(Charsets.US_ASCII))
        val sealed = cipher.doFinal(seed)
        val iv = cipher.iv
        file.parentFile?.mkdirs()
        val tmp = File(file.path + ".tmp")
        FileOutputStream(tmp).use { out ->
            out.write(MAGIC.toByteArray(Charsets.US_ASCII))
            out.write(iv.size)
            out.write(iv)
            out.write(sealed)
            out.fd.sync()
        }
        if (!tmp.renameTo(file)) throw IOException("cannot rename $tmp to $file")
    }

    private companion object {
        const val MAGIC = "TSD1"
        const val TRANSFORMATION = "AES/GCM/NoPadding"
        const val TAG_BYTES = 16
    }
}
