//! Arbitrary bytes as a BFD control packet: decoding never panics, and whatever is accepted
//! encodes again without panicking.
#![no_main]

use ferrolb_speaker::bfd::packet::ControlPacket;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(packet) = ControlPacket::decode(data) {
        let _ = packet.encode();
    }
});
