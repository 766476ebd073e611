package io.github.ternln.demo.android

import android.app.Application
import android.security.keystore.KeyGenParameterSpec
import android.security.keystore.KeyProperties
import androidx.lifecycle.DefaultLifecycleObserver
import androidx.lifecycle.LifecycleOwner
import androidx.lifecycle.ProcessLifecycleOwner
import io.github.ternln.demo.FfiNodeOps
import io.github.ternln.demo.NodeHolder
import io.github.ternln.demo.SeedVault
import io.github.ternln.demo.WakeLog
import io.github.ternln.demo.WakePolicy
import io.github.ternln.tern.Network
import io.github.ternln.tern.Node
import io.github.ternln.tern.defaultConfig
import java.io.File
import java.security.KeyStore
import javax.crypto.KeyGenerator
import javax.crypto.SecretKey
import kotlinx.coroutines.CoroutineScope
import kotlinx.coroutines.Dispatchers
import kotlinx.coroutines.SupervisorJob
import kotlinx.coroutines.launch

/**
 * The process-wide pieces: the seed vault (a file sealed by an Android Keystore key), the one
 * [NodeHolder] shared by the Activity and the Worker, the wake log. The app's node runs while
 * the app is in the foreground (ProcessLifecycleOwner ON_START) and is paused on ON_STOP, so a
 * background wake can take the data dir.
 */
class TernApp : Application() {
    lateinit var holder: NodeHolder<Node>
        private set
    lateinit var log: WakeLog
        private set
    lateinit var vault: SeedVault
        private set
    val scope = CoroutineScope(SupervisorJob() + Dispatchers.Main.immediate)

    override fun onCreate() {
        super.onCreate()
        vault = SeedVault(File(noBackupFilesDir, "seed.sealed"), ::keystoreKey)
        log = WakeLog(File(noBackupFilesDir, "wakes.log"))
        val config = defaultConfig(
            Network.valueOf(BuildConfig.NETWORK),
            File(noBackupFilesDir, "tern").path,
            BuildConfig.ESPLORA_URL,
        ).copy(runtimeThreads = 1u)
        holder = NodeHolder(FfiNodeOps(config) { vault.loadOrCreate() })
        WakeScheduler.ensure(this, WakePolicy.initialDelay(log.lastWake()?.nextWakeAfterSecs))
        ProcessLifecycleOwner.get().lifecycle.addObserver(object : DefaultLifecycleObserver {
            override fun onStop(owner: LifecycleOwner) {
                scope.launch {
                    val channels = holder.appNode()?.let { runCatching { it.listChannels() }.getOrNull() }
                    holder.pause()
                    if (channels != null && WakePolicy.expediteOnBackground(channels)) {
                        WakeScheduler.expedite(this@TernApp)
                    }
                }
            }
        })
    }

    /** A non-exportable AES key in the Android Keystore, made on first use. */
    private fun keystoreKey(): SecretKey {
        val ks = KeyStore.getInstance("AndroidKeyStore").apply { load(null) }
        (ks.getKey(KEY_ALIAS, null) as? SecretKey)?.let { return it }
        val gen = KeyGenerator.getInstance(KeyProperties.KEY_ALGORITHM_AES, "AndroidKeyStore")
        gen.init(
            KeyGenParameterSpec.Builder(KEY_ALIAS, KeyProperties.PURPOSE_ENCRYPT or KeyProperties.PURPOSE_DECRYPT)
                .setBlockModes(KeyProperties.BLOCK_MODE_GCM)
                .setEncryptionPaddings(KeyProperties.ENCRYPTION_PADDING_NONE)
                .setKeySize(256)
                // No user authentication: the Worker must read the seed with the screen locked.
                .build(),
        )
        return gen.generateKey()
    }

    private companion object {
        const val KEY_ALIAS = "tern-demo-seed"
    }
}
