//! BGP message framing, encoding and decoding (RFC 4271 §4, RFC 2918, RFC 7606).
//!
//! OPEN, UPDATE and ROUTE-REFRESH are encoded with `netgauze-bgp-pkt`; OPEN is
//! decoded with it too. NOTIFICATION, KEEPALIVE and ROUTE-REFRESH bodies are
//! decoded here because they must accept any code, subcode or AFI/SAFI. Incoming
//! UPDATEs are scanned by [`scan_update`], which applies the RFC 7606 error
//! handling rules (the speaker never imports routes, so it only counts them).

use std::fmt;

use netgauze_bgp_pkt::BgpMessage;
use netgauze_bgp_pkt::iana::RouteRefreshSubcode;
use netgauze_bgp_pkt::notification::BgpNotificationMessage;
use netgauze_bgp_pkt::open::BgpOpenMessage;
use netgauze_bgp_pkt::route_refresh::BgpRouteRefreshMessage;
use netgauze_bgp_pkt::wire::deserializer::BgpParsingContext;
use netgauze_iana::address_family::AddressType;
use netgauze_parse_utils::WritablePdu;
use netgauze_parse_utils::reader::SliceReader;
use netgauze_parse_utils::traits::ParseFromWithOneInput;

/// Length of the BGP message header (marker, length, type).
pub const HEADER_LEN: usize = 19;
/// Largest BGP message without the RFC 8654 extended message capability.
pub const MAX_MESSAGE_LEN: usize = 4096;
/// The 16-octet all-ones marker that starts every message.
pub const MARKER: [u8; 16] = [0xff; 16];

/// BGP message type codes (RFC 4271 §4.1, RFC 2918).
pub mod msg_type {
    /// OPEN.
    pub const OPEN: u8 = 1;
    /// UPDATE.
    pub const UPDATE: u8 = 2;
    /// NOTIFICATION.
    pub const NOTIFICATION: u8 = 3;
    /// KEEPALIVE.
    pub const KEEPALIVE: u8 = 4;
    /// ROUTE-REFRESH.
    pub const ROUTE_REFRESH: u8 = 5;
}

/// NOTIFICATION error codes and subcodes (RFC 4271 §4.5, RFC 4486, RFC 6608).
pub mod err {
    /// Message Header Error.
    pub const HEADER: u8 = 1;
    /// OPEN Message Error.
    pub const OPEN: u8 = 2;
    /// UPDATE Message Error.
    pub const UPDATE: u8 = 3;
    /// Hold Timer Expired.
    pub const HOLD_TIMER_EXPIRED: u8 = 4;
    /// Finite State Machine Error.
    pub const FSM: u8 = 5;
    /// Cease.
    pub const CEASE: u8 = 6;
    /// ROUTE-REFRESH Message Error (RFC 7313).
    pub const ROUTE_REFRESH: u8 = 7;

    /// Header: Connection Not Synchronized.
    pub const HDR_NOT_SYNCHRONIZED: u8 = 1;
    /// Header: Bad Message Length.
    pub const HDR_BAD_LENGTH: u8 = 2;
    /// Header: Bad Message Type.
    pub const HDR_BAD_TYPE: u8 = 3;

    /// OPEN: Unsupported Version Number.
    pub const OPEN_UNSUPPORTED_VERSION: u8 = 1;
    /// OPEN: Bad Peer AS.
    pub const OPEN_BAD_PEER_AS: u8 = 2;
    /// OPEN: Bad BGP Identifier.
    pub const OPEN_BAD_BGP_ID: u8 = 3;
    /// OPEN: Unsupported Optional Parameter.
    pub const OPEN_UNSUPPORTED_PARAM: u8 = 4;
    /// OPEN: Unacceptable Hold Time.
    pub const OPEN_UNACCEPTABLE_HOLD_TIME: u8 = 6;
    /// OPEN: Unsupported Capability (RFC 5492).
    pub const OPEN_UNSUPPORTED_CAPABILITY: u8 = 7;

    /// UPDATE: Malformed Attribute List.
    pub const UPD_MALFORMED_ATTR_LIST: u8 = 1;
    /// UPDATE: Unrecognized Well-known Attribute.
    pub const UPD_UNRECOGNIZED_WELL_KNOWN: u8 = 2;
    /// UPDATE: Missing Well-known Attribute.
    pub const UPD_MISSING_WELL_KNOWN: u8 = 3;
    /// UPDATE: Attribute Flags Error.
    pub const UPD_ATTR_FLAGS: u8 = 4;
    /// UPDATE: Attribute Length Error.
    pub const UPD_ATTR_LENGTH: u8 = 5;
    /// UPDATE: Optional Attribute Error.
    pub const UPD_OPTIONAL_ATTR: u8 = 9;
    /// UPDATE: Invalid Network Field.
    pub const UPD_INVALID_NETWORK: u8 = 10;

    /// FSM: Receive Unexpected Message in OpenSent State (RFC 6608).
    pub const FSM_UNEXPECTED_IN_OPENSENT: u8 = 1;
    /// FSM: Receive Unexpected Message in OpenConfirm State.
    pub const FSM_UNEXPECTED_IN_OPENCONFIRM: u8 = 2;
    /// FSM: Receive Unexpected Message in Established State.
    pub const FSM_UNEXPECTED_IN_ESTABLISHED: u8 = 3;

    /// Cease: Administrative Shutdown (RFC 4486).
    pub const CEASE_ADMIN_SHUTDOWN: u8 = 2;
    /// Cease: Peer De-configured.
    pub const CEASE_PEER_DECONFIGURED: u8 = 3;
    /// Cease: Administrative Reset.
    pub const CEASE_ADMIN_RESET: u8 = 4;
    /// Cease: Connection Collision Resolution.
    pub const CEASE_COLLISION: u8 = 7;
    /// Cease: BFD Down (RFC 9384).
    pub const CEASE_BFD_DOWN: u8 = 10;
}

/// A NOTIFICATION message: error code, subcode and data (RFC 4271 §4.5).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Notification {
    /// Error code.
    pub code: u8,
    /// Error subcode (0 = unspecific).
    pub subcode: u8,
    /// Diagnostic data.
    pub data: Vec<u8>,
}

impl Notification {
    /// A notification with the given code, subcode and data.
    pub fn new(code: u8, subcode: u8, data: impl Into<Vec<u8>>) -> Self {
        Self {
            code,
            subcode,
            data: data.into(),
        }
    }

    /// Message Header Error with `subcode` and `data`.
    pub fn header(subcode: u8, data: impl Into<Vec<u8>>) -> Self {
        Self::new(err::HEADER, subcode, data)
    }

    /// OPEN Message Error with `subcode` and `data`.
    pub fn open(subcode: u8, data: impl Into<Vec<u8>>) -> Self {
        Self::new(err::OPEN, subcode, data)
    }

    /// UPDATE Message Error with `subcode` and `data`.
    pub fn update(subcode: u8, data: impl Into<Vec<u8>>) -> Self {
        Self::new(err::UPDATE, subcode, data)
    }

    /// Hold Timer Expired.
    pub fn hold_timer_expired() -> Self {
        Self::new(err::HOLD_TIMER_EXPIRED, 0, Vec::new())
    }

    /// Finite State Machine Error with `subcode`.
    pub fn fsm(subcode: u8) -> Self {
        Self::new(err::FSM, subcode, Vec::new())
    }

    /// Cease with `subcode`.
    pub fn cease(subcode: u8) -> Self {
        Self::new(err::CEASE, subcode, Vec::new())
    }

    /// The complete NOTIFICATION message on the wire.
    pub fn encode(&self) -> Vec<u8> {
        // Data is capped so the message never exceeds the 4096 octet maximum.
        let data = &self.data[..self.data.len().min(MAX_MESSAGE_LEN - HEADER_LEN - 2)];
        let mut out = header(msg_type::NOTIFICATION, HEADER_LEN + 2 + data.len());
        out.push(self.code);
        out.push(self.subcode);
        out.extend_from_slice(data);
        out
    }

    /// Parses a NOTIFICATION body (everything after the 19-octet header).
    pub fn decode_body(body: &[u8]) -> Result<Self, Notification> {
        match body {
            [code, subcode, data @ ..] => Ok(Self::new(*code, *subcode, data.to_vec())),
            _ => Err(bad_length(HEADER_LEN + body.len())),
        }
    }

    /// Converts a netgauze notification by round-tripping it through the wire format.
    pub fn from_netgauze(n: BgpNotificationMessage) -> Self {
        let mut buf = Vec::new();
        match BgpMessage::Notification(n).write(&mut buf) {
            Ok(()) if buf.len() >= HEADER_LEN + 2 => Self::decode_body(&buf[HEADER_LEN..])
                .unwrap_or_else(|_| Self::new(err::HEADER, 0, Vec::new())),
            _ => Self::new(err::HEADER, 0, Vec::new()),
        }
    }
}

impl fmt::Display for Notification {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let name = match self.code {
            err::HEADER => "message header error",
            err::OPEN => "OPEN message error",
            err::UPDATE => "UPDATE message error",
            err::HOLD_TIMER_EXPIRED => "hold timer expired",
            err::FSM => "finite state machine error",
            err::CEASE => "cease",
            err::ROUTE_REFRESH => "ROUTE-REFRESH message error",
            _ => "unknown error code",
        };
        write!(f, "{}/{} ({name})", self.code, self.subcode)
    }
}

impl std::error::Error for Notification {}

fn bad_length(len: usize) -> Notification {
    let len = u16::try_from(len).unwrap_or(u16::MAX);
    Notification::header(err::HDR_BAD_LENGTH, len.to_be_bytes())
}

/// A message header with marker, `total_len` and `ty`; the body is appended by the caller.
fn header(ty: u8, total_len: usize) -> Vec<u8> {
    let mut out = Vec::with_capacity(total_len);
    out.extend_from_slice(&MARKER);
    out.extend_from_slice(&(total_len as u16).to_be_bytes());
    out.push(ty);
    out
}

/// The 19-octet KEEPALIVE message.
pub fn encode_keepalive() -> Vec<u8> {
    header(msg_type::KEEPALIVE, HEADER_LEN)
}

/// Errors from encoding a message with netgauze.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("encoding BGP {what} failed: {reason}")]
pub struct EncodeError {
    /// The message kind being encoded.
    pub what: &'static str,
    /// Why encoding failed.
    pub reason: String,
}

/// Encodes any netgauze message (OPEN, UPDATE, ROUTE-REFRESH, ...) to bytes.
pub fn encode_netgauze(msg: &BgpMessage) -> Result<Vec<u8>, EncodeError> {
    let mut buf = Vec::with_capacity(msg.len());
    msg.write(&mut buf).map_err(|e| EncodeError {
        what: "message",
        reason: e.to_string(),
    })?;
    if buf.len() > MAX_MESSAGE_LEN {
        return Err(EncodeError {
            what: "message",
            reason: format!("{} octets exceed the {MAX_MESSAGE_LEN} maximum", buf.len()),
        });
    }
    Ok(buf)
}

/// Encodes an OPEN message.
pub fn encode_open(open: &BgpOpenMessage) -> Result<Vec<u8>, EncodeError> {
    encode_netgauze(&BgpMessage::Open(open.clone()))
}

/// A ROUTE-REFRESH request (RFC 2918; `subtype` per RFC 7313, 0 = normal request).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct RouteRefresh {
    /// Address family identifier.
    pub afi: u16,
    /// Message subtype (RFC 7313; reserved octet in RFC 2918).
    pub subtype: u8,
    /// Subsequent address family identifier.
    pub safi: u8,
}

/// Encodes a normal ROUTE-REFRESH request for an AFI/SAFI netgauze knows.
pub fn encode_route_refresh(afi: u16, safi: u8) -> Result<Vec<u8>, EncodeError> {
    let family = netgauze_iana::address_family::AddressFamily::from_repr(afi);
    let at = family
        .and_then(|f| {
            let s = netgauze_iana::address_family::SubsequentAddressFamily::from_repr(safi)?;
            AddressType::from_afi_safi(f, s).ok()
        })
        .ok_or_else(|| EncodeError {
            what: "ROUTE-REFRESH",
            reason: format!("unsupported AFI/SAFI {afi}/{safi}"),
        })?;
    encode_netgauze(&BgpMessage::RouteRefresh(BgpRouteRefreshMessage::new(
        at,
        RouteRefreshSubcode::NormalRequest,
    )))
}

/// A complete message cut from the byte stream by [`Framer`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Frame {
    /// Message type octet.
    pub msg_type: u8,
    /// The whole message including its header.
    pub bytes: Vec<u8>,
}

impl Frame {
    /// The message body after the 19-octet header.
    pub fn body(&self) -> &[u8] {
        &self.bytes[HEADER_LEN..]
    }
}

/// Checks a 19-octet header: marker, length bounds and type-specific lengths.
/// Returns the message type and total length, or the NOTIFICATION to send.
pub fn check_header(hdr: &[u8]) -> Result<(u8, usize), Notification> {
    if hdr.len() < HEADER_LEN {
        return Err(bad_length(hdr.len()));
    }
    if hdr[..16] != MARKER {
        return Err(Notification::header(err::HDR_NOT_SYNCHRONIZED, Vec::new()));
    }
    let len = usize::from(u16::from_be_bytes([hdr[16], hdr[17]]));
    let ty = hdr[18];
    if !(HEADER_LEN..=MAX_MESSAGE_LEN).contains(&len) {
        return Err(bad_length(len));
    }
    let ok = match ty {
        msg_type::OPEN => len >= HEADER_LEN + 10,
        msg_type::UPDATE => len >= HEADER_LEN + 4,
        msg_type::NOTIFICATION => len >= HEADER_LEN + 2,
        msg_type::KEEPALIVE => len == HEADER_LEN,
        msg_type::ROUTE_REFRESH => len == HEADER_LEN + 4,
        other => return Err(Notification::header(err::HDR_BAD_TYPE, [other])),
    };
    if !ok {
        return Err(bad_length(len));
    }
    Ok((ty, len))
}

/// Streaming framer: feed it TCP reads of any size, take complete messages out.
#[derive(Debug, Default, Clone)]
pub struct Framer {
    buf: Vec<u8>,
    start: usize,
}

impl Framer {
    /// An empty framer.
    pub fn new() -> Self {
        Self::default()
    }

    /// Appends bytes read from the connection.
    pub fn extend(&mut self, data: &[u8]) {
        if self.start > 0 && self.start == self.buf.len() {
            self.buf.clear();
            self.start = 0;
        }
        self.buf.extend_from_slice(data);
    }

    /// Octets buffered but not yet returned as a frame.
    pub fn buffered(&self) -> usize {
        self.buf.len() - self.start
    }

    /// The next complete message, `Ok(None)` if more bytes are needed, or the
    /// NOTIFICATION to send if the header is invalid (the connection must then close).
    pub fn next_frame(&mut self) -> Result<Option<Frame>, Notification> {
        let avail = &self.buf[self.start..];
        if avail.len() < HEADER_LEN {
            return Ok(None);
        }
        let (msg_type, len) = check_header(&avail[..HEADER_LEN])?;
        if avail.len() < len {
            return Ok(None);
        }
        let bytes = avail[..len].to_vec();
        self.start += len;
        if self.start >= 64 * 1024 || self.start == self.buf.len() {
            self.buf.drain(..self.start);
            self.start = 0;
        }
        Ok(Some(Frame { msg_type, bytes }))
    }
}

/// Per-session decoding context.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct DecodeContext {
    /// Whether 4-octet AS numbers were negotiated (AS_PATH uses 4-octet ASNs).
    pub four_octet_as: bool,
    /// Whether the peer is internal (iBGP); affects LOCAL_PREF handling (RFC 7606 §7.5).
    pub internal: bool,
}

/// A decoded BGP message.
#[derive(Debug, Clone, PartialEq)]
pub enum Message {
    /// OPEN (syntax checked by netgauze; use `bgp::open::negotiate` for semantics).
    Open(BgpOpenMessage),
    /// UPDATE, scanned and counted.
    Update(UpdateSummary),
    /// NOTIFICATION.
    Notification(Notification),
    /// KEEPALIVE.
    Keepalive,
    /// ROUTE-REFRESH.
    RouteRefresh(RouteRefresh),
}

/// Decodes a whole message (header included). Errors are the NOTIFICATION to send.
pub fn decode_message(bytes: &[u8], ctx: DecodeContext) -> Result<Message, Notification> {
    let (ty, len) = check_header(bytes)?;
    if len != bytes.len() {
        return Err(bad_length(len));
    }
    let body = &bytes[HEADER_LEN..];
    match ty {
        msg_type::OPEN => decode_open(bytes).map(Message::Open),
        msg_type::UPDATE => scan_update(body, ctx).map(Message::Update),
        msg_type::NOTIFICATION => Notification::decode_body(body).map(Message::Notification),
        msg_type::KEEPALIVE => Ok(Message::Keepalive),
        msg_type::ROUTE_REFRESH => Ok(Message::RouteRefresh(RouteRefresh {
            afi: u16::from_be_bytes([body[0], body[1]]),
            subtype: body[2],
            safi: body[3],
        })),
        other => Err(Notification::header(err::HDR_BAD_TYPE, [other])),
    }
}

/// Decodes an OPEN message (header included) with netgauze.
pub fn decode_open(bytes: &[u8]) -> Result<BgpOpenMessage, Notification> {
    let mut ctx = BgpParsingContext::default();
    let mut reader = SliceReader::new(bytes);
    match BgpMessage::parse(&mut reader, &mut ctx) {
        Ok(BgpMessage::Open(open)) => Ok(open),
        Ok(_) => Err(Notification::header(err::HDR_BAD_TYPE, [bytes[18]])),
        Err(e) => Err(Notification::from_netgauze(e.into())),
    }
}

/// How an incoming UPDATE must be handled (RFC 7606 §2).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum UpdateHandling {
    /// No error.
    #[default]
    Normal,
    /// One or more attributes were malformed in a way that only discards them.
    AttributeDiscard,
    /// The routes in the UPDATE must be treated as withdrawn.
    TreatAsWithdraw,
}

/// What an incoming UPDATE carried (the speaker does not import routes, it counts them).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct UpdateSummary {
    /// IPv4 prefixes in the Withdrawn Routes field.
    pub withdrawn_v4: usize,
    /// IPv4 prefixes in the NLRI field.
    pub announced_v4: usize,
    /// Prefixes in MP_REACH_NLRI.
    pub announced_mp: usize,
    /// Prefixes in MP_UNREACH_NLRI.
    pub withdrawn_mp: usize,
    /// The error-handling outcome.
    pub handling: UpdateHandling,
    /// AFI/SAFI if this UPDATE is an End-of-RIB marker (RFC 4724 §2).
    pub end_of_rib: Option<(u16, u8)>,
    /// Why the handling is not `Normal`, for logs.
    pub reasons: Vec<String>,
}

/// Running totals of received UPDATEs for a session (for status and metrics).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct UpdateCounters {
    /// UPDATE messages received.
    pub updates: u64,
    /// Prefixes announced (IPv4 NLRI plus MP_REACH_NLRI).
    pub announced: u64,
    /// Prefixes withdrawn (Withdrawn Routes plus MP_UNREACH_NLRI).
    pub withdrawn: u64,
    /// UPDATEs handled as treat-as-withdraw.
    pub treat_as_withdraw: u64,
    /// UPDATEs with discarded attributes.
    pub attribute_discard: u64,
    /// End-of-RIB markers received.
    pub end_of_rib: u64,
}

impl UpdateCounters {
    /// Adds one scanned UPDATE.
    pub fn record(&mut self, s: &UpdateSummary) {
        self.updates += 1;
        self.announced += (s.announced_v4 + s.announced_mp) as u64;
        self.withdrawn += (s.withdrawn_v4 + s.withdrawn_mp) as u64;
        match s.handling {
            UpdateHandling::Normal => {}
            UpdateHandling::AttributeDiscard => self.attribute_discard += 1,
            UpdateHandling::TreatAsWithdraw => self.treat_as_withdraw += 1,
        }
        if s.end_of_rib.is_some() {
            self.end_of_rib += 1;
        }
    }
}

const FLAG_OPTIONAL: u8 = 0x80;
const FLAG_TRANSITIVE: u8 = 0x40;
const FLAG_EXTENDED: u8 = 0x10;

/// Walks a list of prefixes in NLRI encoding; returns the count or `None` if malformed.
fn count_prefixes(mut buf: &[u8], max_bits: u8) -> Option<usize> {
    let mut n = 0;
    while let [plen, rest @ ..] = buf {
        if *plen > max_bits {
            return None;
        }
        let octets = usize::from(plen.div_ceil(8));
        if rest.len() < octets {
            return None;
        }
        buf = &rest[octets..];
        n += 1;
    }
    Some(n)
}

fn as_path_ok(mut v: &[u8], asn_len: usize) -> bool {
    while !v.is_empty() {
        let [seg_type, count, rest @ ..] = v else {
            return false;
        };
        let need = usize::from(*count) * asn_len;
        if !(1..=4).contains(seg_type) || *count == 0 || rest.len() < need {
            return false;
        }
        v = &rest[need..];
    }
    true
}

/// Scans an UPDATE body per RFC 4271 §6.3 as revised by RFC 7606: returns the
/// counts and whether to treat-as-withdraw / discard attributes, or the
/// NOTIFICATION to send when the session must be reset.
pub fn scan_update(body: &[u8], ctx: DecodeContext) -> Result<UpdateSummary, Notification> {
    let malformed = || Notification::update(err::UPD_MALFORMED_ATTR_LIST, Vec::new());
    let mut s = UpdateSummary::default();
    if body.len() < 4 {
        return Err(malformed());
    }
    let wlen = usize::from(u16::from_be_bytes([body[0], body[1]]));
    if body.len() < 2 + wlen + 2 {
        return Err(malformed());
    }
    let withdrawn = &body[2..2 + wlen];
    let alen_off = 2 + wlen;
    let alen = usize::from(u16::from_be_bytes([body[alen_off], body[alen_off + 1]]));
    let attrs_start = alen_off + 2;
    if body.len() < attrs_start + alen {
        return Err(malformed());
    }
    let attrs = &body[attrs_start..attrs_start + alen];
    let nlri = &body[attrs_start + alen..];
    s.withdrawn_v4 = count_prefixes(withdrawn, 32)
        .ok_or_else(|| Notification::update(err::UPD_INVALID_NETWORK, Vec::new()))?;
    s.announced_v4 = count_prefixes(nlri, 32)
        .ok_or_else(|| Notification::update(err::UPD_INVALID_NETWORK, Vec::new()))?;

    let asn_len = if ctx.four_octet_as { 4 } else { 2 };
    let mut seen = [false; 256];
    let mut withdraw = false;
    let mut discard = false;
    let mut mp_unreach_empty: Option<(u16, u8)> = None;
    let mut has_mp_reach = false;
    let mut rest = attrs;
    while !rest.is_empty() {
        if rest.len() < 3 {
            return Err(malformed());
        }
        let flags = rest[0];
        let code = rest[1];
        let (vlen, hlen) = if flags & FLAG_EXTENDED != 0 {
            if rest.len() < 4 {
                return Err(malformed());
            }
            (usize::from(u16::from_be_bytes([rest[2], rest[3]])), 4)
        } else {
            (usize::from(rest[2]), 3)
        };
        if rest.len() < hlen + vlen {
            return Err(malformed());
        }
        let whole = &rest[..hlen + vlen];
        let v = &rest[hlen..hlen + vlen];
        rest = &rest[hlen + vlen..];

        if seen[usize::from(code)] {
            // RFC 7606 §3.g: repeated MP attributes reset, others: keep the first.
            if code == 14 || code == 15 {
                return Err(malformed());
            }
            discard = true;
            s.reasons.push(format!("attribute {code} repeated"));
            continue;
        }
        seen[usize::from(code)] = true;

        // Attribute types this scanner knows: 1-10, 14-18 and 32.
        let well_known = matches!(code, 1..=3 | 5 | 6);
        let known = matches!(code, 1..=10 | 14..=18 | 32);
        if !known {
            if flags & FLAG_OPTIONAL == 0 {
                return Err(Notification::update(
                    err::UPD_UNRECOGNIZED_WELL_KNOWN,
                    whole.to_vec(),
                ));
            }
            continue;
        }
        let optional = flags & FLAG_OPTIONAL != 0;
        let transitive = flags & FLAG_TRANSITIVE != 0;
        let flags_ok = if well_known {
            !optional && transitive
        } else {
            match code {
                4 | 9 | 10 | 14 | 15 => optional && !transitive,
                _ => optional && transitive,
            }
        };
        let len_ok = match code {
            1 => vlen == 1 && v[0] <= 2,
            2 => as_path_ok(v, asn_len),
            3 | 4 | 5 | 9 => vlen == 4,
            6 => vlen == 0,
            7 => vlen == 2 + asn_len,
            8 | 10 => vlen % 4 == 0,
            16 => vlen % 8 == 0,
            17 => as_path_ok(v, 4),
            18 => vlen == 8,
            32 => vlen % 12 == 0 && vlen > 0,
            _ => true,
        };
        if code == 14 || code == 15 {
            if !flags_ok {
                return Err(Notification::update(err::UPD_ATTR_FLAGS, whole.to_vec()));
            }
            let mp = scan_mp(code, v)
                .ok_or_else(|| Notification::update(err::UPD_OPTIONAL_ATTR, whole.to_vec()))?;
            if code == 14 {
                has_mp_reach = true;
                s.announced_mp = mp.1;
            } else {
                s.withdrawn_mp = mp.1;
                if mp.1 == 0 {
                    mp_unreach_empty = Some(mp.0);
                }
            }
            continue;
        }
        if flags_ok && len_ok {
            continue;
        }
        let what = if flags_ok {
            "malformed"
        } else {
            "bad flags on"
        };
        s.reasons.push(format!("{what} attribute {code}"));
        match code {
            // RFC 7606 §7.6/7.7, RFC 6793 §6: discard ATOMIC_AGGREGATE, AGGREGATOR,
            // AS4_PATH, AS4_AGGREGATOR.
            6 | 7 | 17 | 18 => discard = true,
            // RFC 7606 §7.5: LOCAL_PREF from an external peer is discarded anyway.
            5 if !ctx.internal => discard = true,
            _ => withdraw = true,
        }
    }

    let has_nlri = s.announced_v4 > 0 || has_mp_reach;
    if has_nlri {
        let mut missing = !seen[1] || !seen[2];
        if s.announced_v4 > 0 && !seen[3] {
            missing = true;
        }
        if missing {
            s.reasons.push("missing well-known attribute".to_owned());
            withdraw = true;
        }
    }
    if s.withdrawn_v4 == 0 && s.announced_v4 == 0 && !has_mp_reach {
        if alen == 0 {
            s.end_of_rib = Some((1, 1));
        } else if let Some(fam) = mp_unreach_empty
            && seen.iter().filter(|x| **x).count() == 1
        {
            s.end_of_rib = Some(fam);
        }
    }
    s.handling = if withdraw {
        UpdateHandling::TreatAsWithdraw
    } else if discard {
        UpdateHandling::AttributeDiscard
    } else {
        UpdateHandling::Normal
    };
    Ok(s)
}

/// Parses MP_REACH (14) or MP_UNREACH (15); returns ((afi, safi), prefix count).
/// Prefix syntax is checked for IPv4/IPv6 unicast only; other families are not counted.
fn scan_mp(code: u8, v: &[u8]) -> Option<((u16, u8), usize)> {
    if v.len() < 3 {
        return None;
    }
    let afi = u16::from_be_bytes([v[0], v[1]]);
    let safi = v[2];
    let nlri = if code == 14 {
        let nh_len = usize::from(*v.get(3)?);
        // next hop, then one reserved octet
        let nlri_start = 4 + nh_len + 1;
        if v.len() < nlri_start {
            return None;
        }
        let nh_ok = match afi {
            1 => matches!(nh_len, 4 | 16 | 32),
            2 => matches!(nh_len, 16 | 32),
            _ => true,
        };
        if !nh_ok {
            return None;
        }
        &v[nlri_start..]
    } else {
        &v[3..]
    };
    let count = match (afi, safi) {
        (1, 1) => count_prefixes(nlri, 32)?,
        (2, 1) => count_prefixes(nlri, 128)?,
        _ => 0,
    };
    Some(((afi, safi), count))
}
