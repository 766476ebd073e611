// The Android demo: the app (thin Android glue) and the Tern AAR built from source
// (bindings/kotlin/android, after scripts/build-android.sh has put the generated Kotlin and
// jniLibs there). The logic the app runs lives in logic/ and is compiled into the app.
pluginManagement {
    repositories { google(); mavenCentral(); gradlePluginPortal() }
}
dependencyResolutionManagement {
    repositories { google(); mavenCentral() }
}
rootProject.name = "tern-android-demo"
include(":app")
include(":tern")
project(":tern").projectDir = file("../bindings/kotlin/android")
