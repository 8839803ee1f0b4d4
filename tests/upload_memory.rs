//! Uploads stream to disk (issue #18, item 5): six concurrent 90 MiB uploads to the
//! real binary grow its resident memory by under 64 MiB, and land as 0640 files in
//! 0750 directories, probed from the file (an MP4 whose `moov` follows its media).

use std::time::Duration;

use futures::StreamExt;
use serde_json::Value;
use tests::TempDir;

use crate::lifecycle::serve;

const MIB: usize = 1024 * 1024;
const UPLOAD: usize = 90 * MIB;
const CHUNK: usize = 64 * 1024;
const BOUNDARY: &str = "pixsim-upload-memory-test";

/// `ftyp`, then an `mdat` of `len` bytes (all `fill`), then a `moov` whose `mvhd` says
/// 4.2 s: the metadata only at the end, as a camera writes it.
fn mp4_parts(len: usize, fill: u8) -> (Vec<u8>, usize, u8, Vec<u8>) {
    let mut head = b"\0\0\0\x14ftypisom\0\0\0\0isom".to_vec();
    head.extend_from_slice(&u32::try_from(8 + len).unwrap().to_be_bytes());
    head.extend_from_slice(b"mdat");
    let mut mvhd = vec![0u8; 100];
    mvhd[12..16].copy_from_slice(&1000u32.to_be_bytes());
    mvhd[16..20].copy_from_slice(&4200u32.to_be_bytes());
    let mut tail = Vec::new();
    tail.extend_from_slice(&(8 + 8 + 100u32).to_be_bytes());
    tail.extend_from_slice(b"moov");
    tail.extend_from_slice(&(8 + 100u32).to_be_bytes());
    tail.extend_from_slice(b"mvhd");
    tail.extend_from_slice(&mvhd);
    (head, len, fill, tail)
}

/// A multipart body streamed in 64 KiB chunks, never whole in memory.
fn streamed_body(fill: u8) -> (reqwest::Body, u64) {
    let (head, len, fill, tail) = mp4_parts(UPLOAD, fill);
    let pre = format!(
        "--{BOUNDARY}\r\nContent-Disposition: form-data; name=\"file\"; filename=\"big.mp4\"\r\nContent-Type: video/mp4\r\n\r\n"
    )
    .into_bytes();
    let post = format!("\r\n--{BOUNDARY}--\r\n").into_bytes();
    let total = (pre.len() + head.len() + len + tail.len() + post.len()) as u64;
    let first = [pre, head].concat();
    let last = [tail, post].concat();
    let middle = futures::stream::unfold(len, move |left| async move {
        (left > 0).then(|| {
            let n = left.min(CHUNK);
            (bytes::Bytes::from(vec![fill; n]), left - n)
        })
    });
    let stream = futures::stream::once(async move { bytes::Bytes::from(first) })
        .chain(middle)
        .chain(futures::stream::once(
            async move { bytes::Bytes::from(last) },
        ))
        .map(Ok::<_, std::io::Error>);
    (reqwest::Body::wrap_stream(stream), total)
}

#[tokio::test(flavor = "multi_thread")]
async fn six_concurrent_90_mib_uploads_stream_to_disk() {
    let state = TempDir::new("upload-memory");
    let r = serve(&state.0);
    let pid = r.child.id();
    let _reaper = crate::game_crash::KillOnDrop(pid as i32);
    let http = reqwest::Client::builder()
        .timeout(Duration::from_secs(300))
        .build()
        .unwrap();
    let token = r.register_and_login(&http, "uploader@example.com").await;
    let upload = |fill: u8| {
        let (body, len) = streamed_body(fill);
        http.post(format!("{}/api/v1/assets/upload", r.http))
            .bearer_auth(&token)
            .header(
                "content-type",
                format!("multipart/form-data; boundary={BOUNDARY}"),
            )
            .header("content-length", len)
            .body(body)
            .send()
    };

    // Warm up (the first upload's allocations and connections), then measure the peak
    // from here: writing 5 to clear_refs resets VmHWM.
    let res = upload(0).await.unwrap();
    assert_eq!(
        res.status(),
        201,
        "{}",
        res.text().await.unwrap_or_default()
    );
    tokio::time::sleep(Duration::from_millis(300)).await;
    let rss = tests::PeakRss::start(pid);
    let base = rss.base_kib();

    let answers = futures::future::join_all((1..=6u8).map(upload)).await;
    let peak = rss.peak_kib();
    let grew_mib = peak.saturating_sub(base) as f64 / 1024.0;
    println!(
        "six concurrent 90 MiB uploads: RSS {:.1} MiB before, peak {:.1} MiB (+{grew_mib:.1} MiB)",
        base as f64 / 1024.0,
        peak as f64 / 1024.0
    );
    for res in answers {
        let res = res.unwrap();
        assert_eq!(res.status(), 201);
        let asset: Value = res.json().await.unwrap();
        assert_eq!(asset["mime"], "video/mp4", "{asset}");
        assert_eq!(asset["size_bytes"], UPLOAD as u64 + 28 + 116, "{asset}");
        // Probed from the file: the moov box sits after 90 MiB of media.
        assert_eq!(asset["duration_ms"], 4200, "{asset}");
    }
    assert!(
        grew_mib < 64.0,
        "six concurrent 90 MiB uploads grew RSS by {grew_mib:.1} MiB"
    );

    // Stored 0640 in 0750 directories, and nothing left half-written.
    use std::os::unix::fs::PermissionsExt;
    let media = state.0.join("media");
    let mut files = 0;
    let mut stack = vec![media.clone()];
    while let Some(dir) = stack.pop() {
        let mode = std::fs::metadata(&dir).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode & !0o750, 0, "{} is {mode:o}", dir.display());
        for e in std::fs::read_dir(&dir).unwrap().flatten() {
            let p = e.path();
            if p.is_dir() {
                stack.push(p);
            } else {
                let mode = e.metadata().unwrap().permissions().mode() & 0o777;
                assert_eq!(mode & !0o640, 0, "{} is {mode:o}", p.display());
                assert!(!p.to_string_lossy().ends_with(".part"), "{}", p.display());
                files += 1;
            }
        }
    }
    assert_eq!(files, 7, "seven distinct uploads, seven files");

    // SAFETY: signalling our own child.
    assert_eq!(unsafe { libc::kill(pid as i32, libc::SIGTERM) }, 0);
    let mut child = r.child;
    child.wait().unwrap();
}
