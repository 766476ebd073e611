package io.github.ternln.tern.test

import java.io.File
import java.net.HttpURLConnection
import java.net.ServerSocket
import java.net.URI
import java.nio.file.Files

/** The tern-devnet binary (TERN_DEVNET_BIN) on a free port: a regtest chain serving Esplora. */
class Devnet : AutoCloseable {
    val port: Int = ServerSocket(0).use { it.localPort }
    val url = "http://127.0.0.1:$port"
    private val process: Process

    init {
        val bin = System.getenv("TERN_DEVNET_BIN") ?: error("TERN_DEVNET_BIN is not set")
        process = ProcessBuilder(bin, "--port", port.toString())
            .redirectErrorStream(true)
            .redirectOutput(ProcessBuilder.Redirect.DISCARD)
            .start()
        val deadline = System.currentTimeMillis() + 30_000
        while (true) {
            try {
                get("/blocks/tip/height")
                break
            } catch (e: java.io.IOException) {
                if (System.currentTimeMillis() > deadline) error("tern-devnet did not start")
                Thread.sleep(50)
            }
        }
    }

    fun get(path: String): String {
        val c = URI(url + path).toURL().openConnection() as HttpURLConnection
        return c.inputStream.use { String(it.readAllBytes()) }
    }

    private fun control(what: String, body: String): String {
        val c = URI("$url/devnet/$what").toURL().openConnection() as HttpURLConnection
        c.requestMethod = "POST"
        c.doOutput = true
        c.setRequestProperty("content-type", "application/json")
        c.outputStream.use { it.write(body.toByteArray()) }
        return c.inputStream.use { String(it.readAllBytes()) }
    }

    /** Delays the answers of `path` by `ms` for the next `count` requests. */
    fun latency(path: String, ms: Int, count: Int) =
        control("faults", """{"path": "$path", "kind": {"latency_ms": $ms}, "count": $count}""")

    fun mine(blocks: Int = 1) = control("mine", """{"blocks": $blocks}""")

    fun faucet(address: String, sat: Long) =
        control("faucet", """{"address": "$address", "amount_sat": $sat}""")

    override fun close() {
        process.destroyForcibly().waitFor()
    }
}

fun tempDir(name: String): File = Files.createTempDirectory("tern-kt-$name").toFile()
