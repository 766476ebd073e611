package io.github.ternln.demo

import org.junit.internal.TextListener
import org.junit.runner.JUnitCore
import kotlin.system.exitProcess

/** JUnit 4 entry point for the kotlinc fallback of scripts/test-bindings.sh (Maven's surefire
 * finds the classes itself): "kotlindemo: N passed, N failed"; non-zero on a failure or none. */
fun main() {
    val core = JUnitCore()
    core.addListener(TextListener(System.out))
    val result = core.run(PolicyAndLogTest::class.java, CoordinationTest::class.java, DevnetTest::class.java)
    val failed = result.failureCount + result.ignoreCount
    println("kotlindemo: ${result.runCount - result.failureCount} passed, $failed failed")
    exitProcess(if (failed == 0 && result.runCount > 0) 0 else 1)
}
