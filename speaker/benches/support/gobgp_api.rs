//! A minimal GoBGP 3.x gRPC client (HTTP/2 via `h2`, protobuf encoded by
//! hand) for the two calls the benchmark needs: `AddPathStream` and
//! `DeletePath(family)`. Field numbers are those of GoBGP 3.10's
//! `api/gobgp.proto` and `api/attribute.proto` (package `apipb`).

use std::net::Ipv4Addr;

use bytes::Bytes;
use tokio::net::TcpStream;

fn varint(b: &mut Vec<u8>, mut v: u64) {
    while v >= 0x80 {
        b.push((v as u8) | 0x80);
        v >>= 7;
    }
    b.push(v as u8);
}

fn field_varint(b: &mut Vec<u8>, field: u32, v: u64) {
    varint(b, u64::from(field) << 3);
    varint(b, v);
}

fn field_bytes(b: &mut Vec<u8>, field: u32, data: &[u8]) {
    varint(b, (u64::from(field) << 3) | 2);
    varint(b, data.len() as u64);
    b.extend_from_slice(data);
}

fn any(type_name: &str, value: &[u8]) -> Vec<u8> {
    let mut b = Vec::new();
    field_bytes(
        &mut b,
        1,
        format!("type.googleapis.com/apipb.{type_name}").as_bytes(),
    );
    field_bytes(&mut b, 2, value);
    b
}

/// `Family { afi: AFI_IP, safi: SAFI_UNICAST }`.
fn family_v4_unicast() -> Vec<u8> {
    let mut b = Vec::new();
    field_varint(&mut b, 1, 1);
    field_varint(&mut b, 2, 1);
    b
}

/// One `Path` for `prefix/32` with ORIGIN IGP and NEXT_HOP 0.0.0.0 (GoBGP
/// then uses its own address toward the peer), as `gobgp global rib add` does.
fn path(prefix: Ipv4Addr) -> Vec<u8> {
    let mut nlri = Vec::new();
    field_varint(&mut nlri, 1, 32);
    field_bytes(&mut nlri, 2, prefix.to_string().as_bytes());
    let origin = any("OriginAttribute", &[]);
    let mut nh = Vec::new();
    field_bytes(&mut nh, 1, b"0.0.0.0");
    let nh = any("NextHopAttribute", &nh);
    let mut p = Vec::new();
    field_bytes(&mut p, 1, &any("IPAddressPrefix", &nlri));
    field_bytes(&mut p, 2, &origin);
    field_bytes(&mut p, 2, &nh);
    field_bytes(&mut p, 9, &family_v4_unicast());
    p
}

fn grpc_frame(msg: &[u8]) -> Bytes {
    let mut f = Vec::with_capacity(msg.len() + 5);
    f.push(0);
    f.extend_from_slice(&(msg.len() as u32).to_be_bytes());
    f.extend_from_slice(msg);
    Bytes::from(f)
}

/// The `AddPathStreamRequest` frames for `prefixes`, `per_msg` paths each
/// (table GLOBAL = 0, the default, is left out).
pub fn add_path_stream(prefixes: &[Ipv4Addr], per_msg: usize) -> Vec<Bytes> {
    prefixes
        .chunks(per_msg.max(1))
        .map(|chunk| {
            let mut m = Vec::new();
            for p in chunk {
                field_bytes(&mut m, 3, &path(*p));
            }
            grpc_frame(&m)
        })
        .collect()
}

/// The `DeletePathRequest { family: ipv4-unicast }` frame: deletes every
/// locally originated IPv4 unicast path (`gobgp global rib -a ipv4 del all`).
pub fn delete_all_v4() -> Vec<Bytes> {
    let mut m = Vec::new();
    field_bytes(&mut m, 3, &family_v4_unicast());
    vec![grpc_frame(&m)]
}

/// An HTTP/2 connection to gobgpd's API.
pub struct Client {
    send: h2::client::SendRequest<Bytes>,
    authority: String,
}

impl Client {
    /// Connects (plain-text HTTP/2, as gobgpd serves it by default).
    pub async fn connect(addr: &str) -> anyhow::Result<Self> {
        let tcp = TcpStream::connect(addr).await?;
        tcp.set_nodelay(true)?;
        let (send, conn) = h2::client::handshake(tcp).await?;
        tokio::spawn(async move {
            let _ = conn.await;
        });
        Ok(Self {
            send,
            authority: addr.to_owned(),
        })
    }

    /// Calls `/apipb.GobgpApi/<method>` with `frames` as the request stream
    /// and returns once the response and its trailers have arrived; fails
    /// unless grpc-status is 0.
    pub async fn call(&mut self, method: &str, frames: Vec<Bytes>) -> anyhow::Result<()> {
        let mut send = self.send.clone().ready().await?;
        let req = http::Request::builder()
            .method(http::Method::POST)
            .uri(format!("http://{}/apipb.GobgpApi/{method}", self.authority))
            .header("content-type", "application/grpc")
            .header("te", "trailers")
            .body(())?;
        let (resp, mut stream) = send.send_request(req, false)?;
        let n = frames.len();
        for (i, f) in frames.into_iter().enumerate() {
            stream.send_data(f, i + 1 == n)?;
        }
        let resp = resp.await?;
        let (parts, mut body) = resp.into_parts();
        while let Some(chunk) = body.data().await {
            let chunk = chunk?;
            let _ = body.flow_control().release_capacity(chunk.len());
        }
        let trailers = body.trailers().await?;
        let status = trailers
            .as_ref()
            .and_then(|t| t.get("grpc-status"))
            .or_else(|| parts.headers.get("grpc-status"))
            .and_then(|v| v.to_str().ok())
            .unwrap_or("missing")
            .to_owned();
        if status != "0" {
            let msg = trailers
                .as_ref()
                .and_then(|t| t.get("grpc-message"))
                .and_then(|v| v.to_str().ok())
                .unwrap_or("")
                .to_owned();
            anyhow::bail!("gobgp {method}: grpc-status {status} {msg}");
        }
        Ok(())
    }
}
