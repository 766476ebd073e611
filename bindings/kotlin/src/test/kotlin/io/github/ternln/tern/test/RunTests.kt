package io.github.ternln.tern.test

import org.junit.internal.TextListener
import org.junit.runner.JUnitCore
import kotlin.system.exitProcess

/** JUnit 4 entry point: JUnit's text output, then "kotlin: N passed, N failed" (a skipped test
 * counts as failed); a non-zero exit on any failure or on zero tests. */
fun main() {
    val core = JUnitCore()
    core.addListener(TextListener(System.out))
    val result = core.run(TernTest::class.java)
    val failed = result.failureCount + result.ignoreCount
    println("kotlin: ${result.runCount - result.failureCount} passed, $failed failed")
    exitProcess(if (failed == 0 && result.runCount > 0) 0 else 1)
}
