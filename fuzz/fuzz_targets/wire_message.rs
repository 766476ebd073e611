//! Any bytes: decoding never panics, and whatever decodes re-encodes to bytes that decode to
//! the same message and re-encode identically (encoding is a fixed point).
#![no_main]

use libfuzzer_sys::fuzz_target;
use tern_core::proto::wire::Message;

fuzz_target!(|data: &[u8]| {
    if let Ok(msg) = Message::decode(data) {
        let encoded = msg.encode();
        let again = Message::decode(&encoded).expect("our own encoding decodes");
        assert_eq!(again, msg);
        assert_eq!(again.encode(), encoded);
    }
});
