package io.github.ternln.tern.test

import io.github.ternln.tern.Network
import io.github.ternln.tern.defaultConfig
import io.github.ternln.tern.wake
import java.time.Duration
import kotlinx.coroutines.runBlocking

/**
 * A process that runs one wake (the kill test's child): `WakeChildKt <data dir> <esplora url>`,
 * seed 26, a 60 s deadline. The test SIGKILLs it mid-wake.
 */
fun main(args: Array<String>) = runBlocking {
    val config = defaultConfig(Network.REGTEST, args[0], args[1]).copy(runtimeThreads = 1u)
    wake(config, ByteArray(32) { 26 }, Duration.ofSeconds(60))
    Unit
}
