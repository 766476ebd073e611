plugins {
    id("com.android.application")
    id("org.jetbrains.kotlin.android")
}

android {
    namespace = "io.github.ternln.demo.android"
    compileSdk = 35
    defaultConfig {
        applicationId = "io.github.ternln.demo"
        minSdk = 26 // java.time without desugaring (the bindings use java.time.Duration)
        targetSdk = 35
        versionCode = 1
        versionName = "0.1.0"
        buildConfigField("String", "ESPLORA_URL", "\"${property("ternEsploraUrl")}\"")
        buildConfigField("String", "NETWORK", "\"${property("ternNetwork")}\"")
    }
    buildFeatures { buildConfig = true }
    compileOptions {
        sourceCompatibility = JavaVersion.VERSION_17
        targetCompatibility = JavaVersion.VERSION_17
    }
    // The plain-Kotlin logic (scheduling, coordination, the wake log, the seed file) is one
    // more source directory of the app: the same files the JVM tests compile (logic/pom.xml).
    sourceSets["main"].kotlin.srcDir("../logic/src/main/kotlin")
}

kotlin { jvmToolchain(17) }

dependencies {
    implementation(project(":tern"))
    implementation("net.java.dev.jna:jna:5.17.0@aar")
    implementation("org.jetbrains.kotlinx:kotlinx-coroutines-android:1.9.0")
    implementation("androidx.work:work-runtime-ktx:2.10.0")
    implementation("androidx.lifecycle:lifecycle-process:2.8.7")
    implementation("androidx.lifecycle:lifecycle-runtime-ktx:2.8.7") // lifecycleScope
    implementation("androidx.appcompat:appcompat:1.7.0")
}
