//! `uniffi-bindgen generate --library <libtern_ffi.so> --language kotlin|swift|python ...`
fn main() {
    uniffi::uniffi_bindgen_main()
}
