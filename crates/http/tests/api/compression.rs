//! Request bodies compressed with `Content-Encoding: deflate` (zlib, as GNU Taler's C clients
//! send them) or `gzip`; the body limit counts decompressed bytes.

use std::io::Write as _;

use axum::body::Body;
use axum::http::{Request, StatusCode};
use flate2::write::{GzEncoder, ZlibEncoder};
use flate2::{Compress, Compression, FlushCompress};

use crate::helpers::{app, body_bytes, send, taler_error};

const ECHO: &str = r#"{"name":"compressed","count":7}"#;

fn zlib(data: &[u8]) -> Vec<u8> {
    let mut encoder = ZlibEncoder::new(Vec::new(), Compression::default());
    encoder.write_all(data).unwrap();
    encoder.finish().unwrap()
}

fn gzip(data: &[u8]) -> Vec<u8> {
    let mut encoder = GzEncoder::new(Vec::new(), Compression::default());
    encoder.write_all(data).unwrap();
    encoder.finish().unwrap()
}

fn post_encoded(encoding: &str, body: Vec<u8>) -> Request<Body> {
    Request::post("/echo")
        .header("content-type", "application/json")
        .header("content-encoding", encoding)
        .body(Body::from(body))
        .unwrap()
}

/// The start of a zlib stream that inflates to `chunks` × 64 KiB of zeros, built from one
/// compressed chunk repeated (each chunk ends at a sync flush, so the pieces line up). It has no
/// final block: whoever reads it all finds it truncated, but only after inflating everything.
fn zlib_zeros(chunks: usize) -> Vec<u8> {
    let zeros = vec![0u8; 64 * 1024];
    let mut compress = Compress::new(Compression::best(), true);
    let mut piece = |input: &[u8]| {
        let mut out = Vec::with_capacity(4096);
        let before = compress.total_in();
        compress
            .compress_vec(input, &mut out, FlushCompress::Sync)
            .unwrap();
        assert_eq!(compress.total_in() - before, input.len() as u64);
        out
    };
    let first = piece(&zeros);
    let second = piece(&zeros);
    let third = piece(&zeros);
    assert_eq!(second, third, "a steady-state chunk repeats byte for byte");
    let mut stream = first;
    for _ in 1..chunks {
        stream.extend_from_slice(&second);
    }
    stream
}

#[test]
fn the_bomb_inflates_to_what_it_claims() {
    use std::io::Read as _;
    let bomb = zlib_zeros(8);
    let mut inflated = Vec::new();
    // Truncated on purpose: reading to the end fails after all the zeros came out.
    let _ = flate2::read::ZlibDecoder::new(&bomb[..]).read_to_end(&mut inflated);
    assert_eq!(inflated.len(), 8 * 64 * 1024);
    assert!(inflated.iter().all(|b| *b == 0));
}

#[tokio::test]
async fn deflate_body_is_accepted() {
    let app = app(1024);
    let response = send(&app.router, post_encoded("deflate", zlib(ECHO.as_bytes()))).await;
    assert_eq!(response.status(), StatusCode::OK);
    assert_eq!(body_bytes(response).await, ECHO.as_bytes());
}

#[tokio::test]
async fn gzip_body_is_accepted_and_names_are_case_insensitive() {
    let app = app(1024);
    for encoding in ["gzip", "GZIP", "x-gzip"] {
        let response = send(&app.router, post_encoded(encoding, gzip(ECHO.as_bytes()))).await;
        assert_eq!(response.status(), StatusCode::OK, "{encoding}");
        assert_eq!(body_bytes(response).await, ECHO.as_bytes());
    }
    let response = send(&app.router, post_encoded("Deflate", zlib(ECHO.as_bytes()))).await;
    assert_eq!(response.status(), StatusCode::OK);
    let response = send(&app.router, post_encoded("identity", ECHO.into())).await;
    assert_eq!(response.status(), StatusCode::OK);
}

#[tokio::test]
async fn unknown_encoding_is_415_taler() {
    let app = app(1024);
    for encoding in ["br", "compress", "gzip, deflate", "zstd"] {
        taler_error(
            send(&app.router, post_encoded(encoding, ECHO.into())).await,
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            28,
        )
        .await;
    }
}

#[tokio::test]
async fn corrupt_stream_is_compression_invalid() {
    let app = app(1024);
    let mut broken = zlib(ECHO.as_bytes());
    let middle = broken.len() / 2;
    broken[middle] ^= 0xff;
    broken[2] ^= 0x55;
    taler_error(
        send(&app.router, post_encoded("deflate", broken)).await,
        StatusCode::BAD_REQUEST,
        28,
    )
    .await;
    // Plain JSON sent as "gzip" is not a gzip stream.
    taler_error(
        send(&app.router, post_encoded("gzip", ECHO.into())).await,
        StatusCode::BAD_REQUEST,
        28,
    )
    .await;
}

#[tokio::test]
async fn decompressed_size_is_limited() {
    // Under the limit once decompressed: fine.
    let limit = 4096;
    let app = app(limit);
    let name = "n".repeat(limit - 40);
    let fits = format!(r#"{{"name":"{name}","count":1}}"#);
    assert!(fits.len() <= limit);
    let response = send(&app.router, post_encoded("deflate", zlib(fits.as_bytes()))).await;
    assert_eq!(response.status(), StatusCode::OK);

    // Small on the wire, over the limit once decompressed: 413, like an uncompressed body.
    let name = "n".repeat(limit);
    let too_big = format!(r#"{{"name":"{name}","count":1}}"#);
    let compressed = zlib(too_big.as_bytes());
    assert!(compressed.len() < limit / 4, "{}", compressed.len());
    taler_error(
        send(&app.router, post_encoded("deflate", compressed)).await,
        StatusCode::PAYLOAD_TOO_LARGE,
        32,
    )
    .await;
    taler_error(
        send(&app.router, post_encoded("gzip", gzip(too_big.as_bytes()))).await,
        StatusCode::PAYLOAD_TOO_LARGE,
        32,
    )
    .await;
}

/// A zlib bomb (256 KiB on the wire, 256 MiB inflated) under the default 1 MiB limit: the
/// decompressed stream is read only up to the limit. Were the body inflated before the limit
/// applied, the server would hold 256 MiB and then answer "malformed JSON" (400), not 413.
#[tokio::test]
async fn zip_bomb_stops_at_the_limit() {
    let app = app(cardcash_http::DEFAULT_BODY_LIMIT);
    let bomb = zlib_zeros(4096);
    assert!(
        bomb.len() < cardcash_http::DEFAULT_BODY_LIMIT,
        "{}",
        bomb.len()
    );
    taler_error(
        send(&app.router, post_encoded("deflate", bomb)).await,
        StatusCode::PAYLOAD_TOO_LARGE,
        32,
    )
    .await;
}

/// Over a real connection, as the exchange's `taler-exchange-wirewatch`/`transfer` client does.
#[tokio::test]
async fn deflate_over_the_wire() {
    let app = app(cardcash_http::DEFAULT_BODY_LIMIT);
    let token = tokio_util::sync::CancellationToken::new();
    let server = cardcash_http::serve(app.router, "127.0.0.1:0".parse().unwrap(), token.clone())
        .await
        .unwrap();
    let response = reqwest::Client::new()
        .post(format!("http://{}/echo", server.addr()))
        .header("content-type", "application/json")
        .header("content-encoding", "deflate")
        .body(zlib(ECHO.as_bytes()))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    assert_eq!(response.text().await.unwrap(), ECHO);
    token.cancel();
    server.join().await.unwrap();
}
