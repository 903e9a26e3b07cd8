//! Arbitrary bytes fed to the stream framer in fuzz-chosen chunks: it yields frames or a
//! NOTIFICATION, never panics, and never buffers more than it was given.
#![no_main]

use ferrolb_speaker::bgp::codec::{DecodeContext, Framer, decode_message};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Some((&chunk, rest)) = data.split_first() else { return };
    let chunk = usize::from(chunk.max(1));
    let mut framer = Framer::new();
    let mut fed = 0usize;
    for piece in rest.chunks(chunk) {
        framer.extend(piece);
        fed += piece.len();
        assert!(framer.buffered() <= fed);
        loop {
            match framer.next_frame() {
                Ok(Some(frame)) => {
                    let _ = decode_message(&frame.bytes, DecodeContext { four_octet_as: true, internal: false });
                }
                Ok(None) => break,
                Err(_) => return,
            }
        }
    }
});
