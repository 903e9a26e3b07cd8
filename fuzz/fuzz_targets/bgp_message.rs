//! Arbitrary bytes as one BGP message (header included), under every decode context: the
//! decoder returns a message or a NOTIFICATION, never panics.
#![no_main]

use ferrolb_speaker::bgp::codec::{DecodeContext, decode_message};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    for four_octet_as in [false, true] {
        for internal in [false, true] {
            let _ = decode_message(data, DecodeContext { four_octet_as, internal });
        }
    }
});
