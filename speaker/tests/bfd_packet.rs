//! BFD control packet fixtures (RFC 5880 §4.1) and receive validation (§6.8.6).

use ferrolb_speaker::bfd::packet::{ControlPacket, Diag, PacketError, SessionState};
use proptest::prelude::*;

fn hex(s: &str) -> Vec<u8> {
    let d: Vec<u8> = s
        .bytes()
        .filter(|b| b.is_ascii_hexdigit())
        .map(|b| (b as char).to_digit(16).map(|d| d as u8).unwrap_or(0))
        .collect();
    d.chunks(2).map(|p| p[0] << 4 | p[1]).collect()
}

fn packet(diag: Diag, state: SessionState) -> ControlPacket {
    ControlPacket {
        diag,
        state,
        poll: false,
        final_: false,
        control_plane_independent: false,
        auth_present: false,
        demand: false,
        multipoint: false,
        detect_mult: 3,
        length: 24,
        my_discr: 1,
        your_discr: 2,
        desired_min_tx: 100_000,
        required_min_rx: 100_000,
        required_min_echo_rx: 0,
    }
}

#[test]
fn fixtures_encode_and_decode() {
    let up = packet(Diag::None, SessionState::Up);
    let mut down_poll = packet(Diag::ControlDetectionTimeExpired, SessionState::Down);
    down_poll.poll = true;
    down_poll.your_discr = 0;
    down_poll.desired_min_tx = 1_000_000;
    let mut admin_final = packet(Diag::AdminDown, SessionState::AdminDown);
    admin_final.final_ = true;
    admin_final.control_plane_independent = true;
    admin_final.detect_mult = 5;
    admin_final.required_min_echo_rx = 50_000;
    let cases = [
        // vers 1 | diag 0, state Up (3 << 6), mult 3, len 24, discrs 1/2, 100 ms / 100 ms / 0
        (
            up,
            "20 c0 03 18 00000001 00000002 000186a0 000186a0 00000000",
        ),
        // diag 1, state Down (1 << 6) | P (0x20), your discr 0, 1 s slow tx
        (
            down_poll,
            "21 60 03 18 00000001 00000000 000f4240 000186a0 00000000",
        ),
        // diag 7, AdminDown | F (0x10) | C (0x08), mult 5, echo rx 50 ms
        (
            admin_final,
            "27 18 05 18 00000001 00000002 000186a0 000186a0 0000c350",
        ),
    ];
    for (p, h) in cases {
        let bytes = hex(h);
        assert_eq!(p.encode().to_vec(), bytes, "{p:?}");
        assert_eq!(ControlPacket::decode(&bytes), Ok(p));
    }
}

#[test]
fn validation_rejects_bad_packets() {
    let good = packet(Diag::None, SessionState::Up).encode();
    let with = |i: usize, v: u8| {
        let mut b = good.to_vec();
        b[i] = v;
        b
    };
    let cases: Vec<(Vec<u8>, PacketError)> = vec![
        (good[..23].to_vec(), PacketError::TooShort(23)),
        (with(0, 0x00), PacketError::BadVersion(0)),
        (with(0, 0x40), PacketError::BadVersion(2)),
        (with(3, 23), PacketError::LengthTooSmall(23)),
        (
            with(3, 25),
            PacketError::LengthBeyondPayload {
                field: 25,
                received: 24,
            },
        ),
        // A bit set: the minimum length becomes 26.
        (with(1, 0xc4), PacketError::LengthTooSmall(24)),
        (with(2, 0), PacketError::ZeroDetectMult),
        (with(1, 0xc1), PacketError::Multipoint),
        (
            {
                let mut b = good.to_vec();
                b[4..8].copy_from_slice(&[0; 4]);
                b
            },
            PacketError::ZeroMyDiscr,
        ),
    ];
    for (bytes, want) in cases {
        assert_eq!(ControlPacket::decode(&bytes), Err(want), "{bytes:02x?}");
    }
    // Trailing octets beyond the length field are allowed (e.g. UDP padding).
    let mut long = good.to_vec();
    long.extend([0, 0]);
    assert!(ControlPacket::decode(&long).is_ok());
}

#[test]
fn state_and_diag_values_round_trip() {
    for s in SessionState::ALL {
        assert_eq!(SessionState::from_bits(s.bits()), s);
    }
    for b in 0..32 {
        assert_eq!(Diag::from_bits(b).bits(), b);
    }
}

proptest! {
    #[test]
    fn decode_never_panics(bytes in proptest::collection::vec(any::<u8>(), 0..64)) {
        if let Ok(p) = ControlPacket::decode(&bytes) {
            // Whatever decodes re-encodes to the same first 24 octets
            // (the length field is normalised to 24).
            let mut want = bytes[..24].to_vec();
            want[3] = 24;
            prop_assert_eq!(p.encode().to_vec(), want);
        }
    }
}
