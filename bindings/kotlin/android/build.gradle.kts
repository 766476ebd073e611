// The AAR: the Android-flavoured generated Kotlin + TernFlow.kt (copied in by
// scripts/build-android.sh, never committed) and libtern_ffi.so for three ABIs (jniLibs).
plugins {
    id("com.android.library") version "8.7.3"
    id("org.jetbrains.kotlin.android") version "2.1.0"
}

android {
    namespace = "io.github.ternln.tern"
    compileSdk = 35
    defaultConfig {
        minSdk = 24
        consumerProguardFiles("consumer-rules.pro")
    }
    compileOptions {
        sourceCompatibility = JavaVersion.VERSION_17
        targetCompatibility = JavaVersion.VERSION_17
    }
    // AGP >= 8.5.1 stores native libraries uncompressed and 16 KB-aligned in the zip.
    packaging { jniLibs { useLegacyPackaging = false } }
}

kotlin { jvmToolchain(17) }

dependencies {
    // JNA >= 5.17: older AARs ship a libjnidispatch.so that is not 16 KB aligned (JNA #1647).
    implementation("net.java.dev.jna:jna:5.17.0@aar")
    implementation("org.jetbrains.kotlinx:kotlinx-coroutines-core:1.9.0")
    implementation("androidx.annotation:annotation:1.9.1")
}
