//! The asset library (issue #23) on the real server and PostgreSQL: version families,
//! clips and keyframes cut by the local encoder (decoded here by ffmpeg to check them),
//! variants made on demand, tags and archiving in lists and searches, branch points,
//! and that another user can neither see nor change any of it.

use reqwest::{Method, StatusCode};
use serde_json::{Value, json};
use tests::TestServer;

use crate::similar::render_with;

/// What ffmpeg decodes of a file: its picture size and the number of video frames.
fn decode(bytes: &[u8]) -> (u32, u32, usize) {
    let dir = tests::TempDir::new("decode");
    let path = dir.0.join("media");
    std::fs::write(&path, bytes).unwrap();
    let ff = embedded::ffmpeg::ffmpeg().unwrap();
    let out = std::process::Command::new(ff)
        .args(["-hide_banner", "-nostdin", "-i"])
        .arg(&path)
        .args(["-map", "0:v:0", "-pix_fmt", "gray", "-f", "framemd5", "-"])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let stderr = String::from_utf8_lossy(&out.stderr);
    // "Stream #0:0…: Video: h264 (…), yuv420p(…), 640x360 [SAR…]" of the input.
    let line = stderr
        .lines()
        .find(|l| l.contains("Stream #0:") && l.contains("Video:"))
        .unwrap_or_else(|| panic!("no video stream: {stderr}"));
    let size = line
        .split([' ', ','])
        .find_map(|w| {
            let (a, b) = w.split_once('x')?;
            Some((a.parse::<u32>().ok()?, b.parse::<u32>().ok()?))
        })
        .unwrap_or_else(|| panic!("no size in {line}"));
    // framemd5: one line per decoded frame, `stream, dts, pts, duration, size, md5`;
    // each gray frame has width × height bytes.
    let frames: Vec<String> = String::from_utf8_lossy(&out.stdout)
        .lines()
        .filter(|l| !l.starts_with('#'))
        .map(str::to_owned)
        .collect();
    for f in &frames {
        let bytes: u32 = f.split(',').nth(4).unwrap().trim().parse().unwrap();
        assert_eq!(
            bytes,
            size.0 * size.1,
            "a decoded frame of another size: {f}"
        );
    }
    (size.0, size.1, frames.len())
}

async fn bytes_of(t: &TestServer, token: &str, path: &str) -> (StatusCode, Vec<u8>, String) {
    let res = t
        .http
        .get(t.url(path))
        .bearer_auth(token)
        .send()
        .await
        .unwrap();
    let status = res.status();
    let mime = res
        .headers()
        .get("content-type")
        .map(|v| v.to_str().unwrap().to_owned())
        .unwrap_or_default();
    (status, res.bytes().await.unwrap().to_vec(), mime)
}

fn ids(v: &Value) -> Vec<String> {
    v.as_array()
        .unwrap()
        .iter()
        .map(|a| a["id"].as_str().unwrap().to_owned())
        .collect()
}

#[tokio::test(flavor = "multi_thread")]
async fn clips_keyframes_and_variants_are_real_media() {
    let t = TestServer::start().await;
    let alice = t.user("cutter@example.com").await;
    let bob = t.user("peeker@example.com").await;
    // 3 s at 24 fps, 1280×720.
    let video = render_with(&t, &alice, "a red door in a white wall", 1, 3, "720p").await;
    let (_, src) = t
        .get(&format!("/api/v1/assets/{video}"), Some(&alice))
        .await;
    assert_eq!(src["fps"], 24.0, "{src}");
    assert_eq!(src["sync_status"], "downloaded");

    // A clip of 1.5 s: its own file, decoding to 36 frames of the source's size.
    let (s, clip) = t
        .post(
            &format!("/api/v1/assets/{video}/clips"),
            Some(&alice),
            json!({"start_ms": 500, "end_ms": 2000, "label": "the door opens"}),
        )
        .await;
    assert_eq!(s, StatusCode::CREATED, "{clip}");
    let clip_id = clip["id"].as_str().unwrap().to_owned();
    assert_eq!(clip["asset"]["id"], clip["id"]);
    assert_eq!(clip["asset"]["parent_asset_id"], video.as_str());
    assert_eq!(clip["asset"]["origin"], "derived");
    assert_eq!(clip["label"], "the door opens");
    let (s, file, mime) = bytes_of(&t, &alice, &format!("/api/v1/assets/{clip_id}/file")).await;
    assert_eq!((s, mime.as_str()), (StatusCode::OK, "video/mp4"));
    let (w, h, frames) = decode(&file);
    assert_eq!((w, h), (1280, 720));
    assert_eq!(frames, 36, "1.5 s at 24 fps");
    let ms = clip["asset"]["duration_ms"].as_i64().unwrap();
    assert!((1450..=1550).contains(&ms), "{clip}");
    // Listed under its video; its lineage names the segment in ms and frames.
    let (_, list) = t
        .get(&format!("/api/v1/assets/{video}/clips"), Some(&alice))
        .await;
    assert_eq!(ids(&list), vec![clip_id.clone()]);
    let (_, lin) = t
        .get(&format!("/api/v1/assets/{clip_id}/lineage"), Some(&alice))
        .await;
    let edge = &lin["parents"][0];
    assert_eq!(edge["relation"], "clip");
    assert_eq!(
        (
            &edge["start_ms"],
            &edge["end_ms"],
            &edge["start_frame"],
            &edge["end_frame"]
        ),
        (&json!(500), &json!(2000), &json!(12), &json!(48)),
        "{lin}"
    );

    // Ranges outside the video, and what is not a video, are refused.
    for bad in [
        json!({"start_ms": 2000, "end_ms": 1000}),
        json!({"start_ms": 0, "end_ms": 60_000}),
        json!({"start_ms": 0, "end_ms": 50}),
        json!({"start_ms": -1, "end_ms": 500}),
    ] {
        let (s, v) = t
            .post(
                &format!("/api/v1/assets/{video}/clips"),
                Some(&alice),
                bad.clone(),
            )
            .await;
        assert_eq!(s, StatusCode::UNPROCESSABLE_ENTITY, "{bad}: {v}");
    }

    // A keyframe: a full-size PNG still, joined by a `keyframe` edge at its time.
    let (s, still) = t
        .post(
            &format!("/api/v1/assets/{video}/keyframes"),
            Some(&alice),
            json!({"at_ms": 1000}),
        )
        .await;
    assert_eq!(s, StatusCode::CREATED, "{still}");
    assert_eq!(
        (&still["media_type"], &still["width"], &still["height"]),
        (&json!("image"), &json!(1280), &json!(720))
    );
    let still_id = still["id"].as_str().unwrap();
    let (_, lin) = t
        .get(&format!("/api/v1/assets/{still_id}/lineage"), Some(&alice))
        .await;
    assert_eq!(lin["parents"][0]["relation"], "keyframe");
    assert_eq!(lin["parents"][0]["start_ms"], 1000);
    assert_eq!(lin["parents"][0]["start_frame"], 24);
    let (s, v) = t
        .post(
            &format!("/api/v1/assets/{still_id}/clips"),
            Some(&alice),
            json!({"start_ms": 0, "end_ms": 500}),
        )
        .await;
    assert_eq!(
        s,
        StatusCode::UNPROCESSABLE_ENTITY,
        "an image has no clips: {v}"
    );

    // Variants: listed, made on first request, then cached (the same bytes).
    let (_, vars) = t
        .get(&format!("/api/v1/assets/{video}/variants"), Some(&alice))
        .await;
    let names: Vec<&str> = vars
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v["name"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["360p", "720p", "poster"]);
    assert!(vars.as_array().unwrap().iter().all(|v| v["ready"] == false));
    let path = format!("/api/v1/assets/{video}/variants/360p");
    let (s, small, mime) = bytes_of(&t, &alice, &path).await;
    assert_eq!((s, mime.as_str()), (StatusCode::OK, "video/mp4"));
    let (w, h, frames) = decode(&small);
    assert_eq!(
        (w, h, frames),
        (640, 360, 72),
        "360 lines, every frame of the 3 s"
    );
    let (_, again, _) = bytes_of(&t, &alice, &path).await;
    assert_eq!(again, small, "served from the cache");
    let (_, vars) = t
        .get(&format!("/api/v1/assets/{video}/variants"), Some(&alice))
        .await;
    let v360 = &vars[0];
    assert_eq!(
        (&v360["ready"], &v360["height"]),
        (&json!(true), &json!(360)),
        "{vars}"
    );
    let (s, poster, mime) = bytes_of(
        &t,
        &alice,
        &format!("/api/v1/assets/{video}/variants/poster"),
    )
    .await;
    assert_eq!((s, mime.as_str()), (StatusCode::OK, "image/png"));
    assert_eq!(&poster[1..4], b"PNG");
    let (s, _, _) = bytes_of(&t, &alice, &format!("/api/v1/assets/{video}/variants/4k")).await;
    assert_eq!(s, StatusCode::NOT_FOUND);

    // Bob sees none of it and changes none of it.
    for path in [
        format!("/api/v1/assets/{video}/clips"),
        format!("/api/v1/assets/{video}/variants"),
        format!("/api/v1/assets/{video}/variants/360p"),
        format!("/api/v1/assets/{video}/versions"),
        format!("/api/v1/assets/{video}/branches"),
        format!("/api/v1/assets/{clip_id}/file"),
    ] {
        let (s, _, _) = bytes_of(&t, &bob, &path).await;
        assert_eq!(s, StatusCode::NOT_FOUND, "{path}");
    }
    let (s, _) = t
        .post(
            &format!("/api/v1/assets/{video}/clips"),
            Some(&bob),
            json!({"start_ms": 0, "end_ms": 500}),
        )
        .await;
    assert_eq!(s, StatusCode::NOT_FOUND);
    let (s, _) = t
        .call(
            Method::PATCH,
            &format!("/api/v1/assets/{video}"),
            Some(&bob),
            Some(json!({"archived": true})),
        )
        .await;
    assert_eq!(s, StatusCode::NOT_FOUND);
    t.stop().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn versions_tags_archive_and_branch_points() {
    let t = TestServer::start().await;
    let alice = t.user("versions@example.com").await;
    let bob = t.user("other@example.com").await;
    let v1 = render_with(&t, &alice, "a harbour at dusk", 1, 2, "360p").await;
    let v2 = render_with(&t, &alice, "a harbour at dusk, boats", 2, 2, "360p").await;
    let v3 = render_with(&t, &alice, "a harbour at night, boats", 3, 2, "360p").await;
    let bobs = render_with(&t, &bob, "a harbour at dusk", 1, 2, "360p").await;

    // Versions: v2 after v1, v3 after v2; the family lists them in order.
    let (s, a) = t
        .post(
            &format!("/api/v1/assets/{v1}/versions"),
            Some(&alice),
            json!({"asset_id": v2, "message": "boats"}),
        )
        .await;
    assert_eq!(s, StatusCode::CREATED, "{a}");
    assert_eq!(
        (
            &a["version_number"],
            &a["parent_asset_id"],
            &a["version_family_id"]
        ),
        (&json!(2), &json!(v1), &json!(v1))
    );
    let (s, a) = t
        .post(
            &format!("/api/v1/assets/{v2}/versions"),
            Some(&alice),
            json!({"asset_id": v3}),
        )
        .await;
    assert_eq!(s, StatusCode::CREATED, "{a}");
    assert_eq!(a["version_number"], 3);
    let (_, fam) = t
        .get(&format!("/api/v1/assets/{v3}/versions"), Some(&alice))
        .await;
    assert_eq!(fam["family_id"], v1.as_str());
    assert_eq!(
        ids(&fam["versions"]),
        vec![v1.clone(), v2.clone(), v3.clone()]
    );
    let numbers: Vec<i64> = fam["versions"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v["version_number"].as_i64().unwrap())
        .collect();
    assert_eq!(numbers, [1, 2, 3]);
    // Already a version; itself; another user's asset.
    let (s, _) = t
        .post(
            &format!("/api/v1/assets/{v1}/versions"),
            Some(&alice),
            json!({"asset_id": v3}),
        )
        .await;
    assert_eq!(s, StatusCode::CONFLICT);
    let (s, _) = t
        .post(
            &format!("/api/v1/assets/{v1}/versions"),
            Some(&alice),
            json!({"asset_id": v1}),
        )
        .await;
    assert_eq!(s, StatusCode::UNPROCESSABLE_ENTITY);
    let (s, _) = t
        .post(
            &format!("/api/v1/assets/{v1}/versions"),
            Some(&alice),
            json!({"asset_id": bobs}),
        )
        .await;
    assert_eq!(s, StatusCode::NOT_FOUND);
    let (_, lin) = t
        .get(&format!("/api/v1/assets/{v3}/lineage"), Some(&alice))
        .await;
    assert_eq!(lin["parents"][0]["relation"], "version");

    // Tags: normalized, filtered on (every tag named must be there).
    let patch = |id: &str, body: Value| {
        let path = format!("/api/v1/assets/{id}");
        let token = alice.clone();
        let t = &t;
        async move { t.call(Method::PATCH, &path, Some(&token), Some(body)).await }
    };
    let (s, a) = patch(&v1, json!({"tags": ["Harbour", "dusk", "harbour"]})).await;
    assert_eq!(s, StatusCode::OK, "{a}");
    assert_eq!(a["tags"], json!(["dusk", "harbour"]));
    let (_, _) = patch(&v3, json!({"tags": ["harbour", "night"]})).await;
    let (s, v) = patch(&v2, json!({"tags": ["two words"]})).await;
    assert_eq!(s, StatusCode::UNPROCESSABLE_ENTITY, "{v}");
    let (_, page) = t.get("/api/v1/assets?tags=harbour", Some(&alice)).await;
    let mut got = ids(&page["items"]);
    got.sort();
    let mut want = vec![v1.clone(), v3.clone()];
    want.sort();
    assert_eq!(got, want);
    let (_, page) = t
        .get("/api/v1/assets?tags=harbour,NIGHT", Some(&alice))
        .await;
    assert_eq!(ids(&page["items"]), vec![v3.clone()]);

    // Archive: out of the list (and of searches), listed with archived=true, restored.
    let (s, a) = patch(&v3, json!({"archived": true})).await;
    assert_eq!(s, StatusCode::OK);
    assert!(a["archived_at"].is_string());
    let (_, page) = t.get("/api/v1/assets?tags=harbour", Some(&alice)).await;
    assert_eq!(ids(&page["items"]), vec![v1.clone()]);
    let (_, page) = t.get("/api/v1/assets?archived=true", Some(&alice)).await;
    assert_eq!(ids(&page["items"]), vec![v3.clone()]);
    let search = |body: Value| {
        let token = alice.clone();
        let t = &t;
        async move {
            // Until every asset is embedded, a search may miss some: wait for v1's.
            for _ in 0..600 {
                let (s, v) = t
                    .post("/api/v1/assets/search", Some(&token), body.clone())
                    .await;
                assert!(s == StatusCode::OK || s == StatusCode::CONFLICT, "{v}");
                if s == StatusCode::OK
                    && v["items"].as_array().unwrap().len()
                        >= body["want"].as_u64().unwrap_or(0) as usize
                {
                    return v;
                }
                tokio::time::sleep(std::time::Duration::from_millis(100)).await;
            }
            panic!("the search never filled");
        }
    };
    let _ = search(json!({"asset_id": v2, "limit": 10})).await;
    let v = t
        .post(
            "/api/v1/assets/search",
            Some(&alice),
            json!({"asset_id": v2, "tags": "harbour"}),
        )
        .await
        .1;
    let found: Vec<&str> = v["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|i| i["asset"]["id"].as_str().unwrap())
        .collect();
    assert_eq!(found, vec![v1.as_str()], "tagged and not archived: {v}");
    let v = t
        .post(
            "/api/v1/assets/search",
            Some(&alice),
            json!({"asset_id": v2, "tags": "harbour", "include_archived": true}),
        )
        .await
        .1;
    assert_eq!(v["items"].as_array().unwrap().len(), 2, "{v}");
    let (_, a) = patch(&v3, json!({"archived": false})).await;
    assert!(a["archived_at"].is_null());

    // Branch points: validated, listed by time, deleted.
    let (s, b) = t
        .post(
            &format!("/api/v1/assets/{v1}/branches"),
            Some(&alice),
            json!({"at_ms": 1500, "label": "the boat turns", "variants": [
                {"key": "north", "weight": 2, "condition": "var.trust >= 3", "asset_id": v2},
                {"key": "south", "asset_id": v3}]}),
        )
        .await;
    assert_eq!(s, StatusCode::CREATED, "{b}");
    assert_eq!(b["variants"][1]["weight"], 1.0);
    for bad in [
        json!({"at_ms": 9000, "variants": [{"key": "a"}]}),
        json!({"at_ms": 100, "variants": []}),
        json!({"at_ms": 100, "variants": [{"key": "1a"}]}),
        json!({"at_ms": 100, "variants": [{"key": "a"}, {"key": "a"}]}),
        json!({"at_ms": 100, "variants": [{"key": "a", "weight": -1}]}),
        json!({"at_ms": 100, "variants": [{"key": "a", "condition": "var.trust >="}]}),
        json!({"at_ms": 100, "variants": [{"key": "a", "asset_id": bobs}]}),
    ] {
        let (s, v) = t
            .post(
                &format!("/api/v1/assets/{v1}/branches"),
                Some(&alice),
                bad.clone(),
            )
            .await;
        assert_eq!(s, StatusCode::UNPROCESSABLE_ENTITY, "{bad}: {v}");
    }
    let (_, list) = t
        .get(&format!("/api/v1/assets/{v1}/branches"), Some(&alice))
        .await;
    assert_eq!(ids(&list), vec![b["id"].as_str().unwrap().to_owned()]);
    let path = format!("/api/v1/assets/{v1}/branches/{}", b["id"].as_str().unwrap());
    let (s, _) = t.call(Method::DELETE, &path, Some(&bob), None).await;
    assert_eq!(s, StatusCode::NOT_FOUND);
    let (s, _) = t.call(Method::DELETE, &path, Some(&alice), None).await;
    assert_eq!(s, StatusCode::NO_CONTENT);
    let (s, _) = t.call(Method::DELETE, &path, Some(&alice), None).await;
    assert_eq!(s, StatusCode::NOT_FOUND);
    t.stop().await;
}

/// Creates a job; returns status and body.
async fn create(t: &TestServer, token: &str, body: Value) -> (StatusCode, Value) {
    t.post("/api/v1/generations", Some(token), body).await
}

fn t2v(prompt: &str, seed: u64) -> Value {
    json!({"provider": "local", "operation": "text_to_video",
           "params": {"prompt": prompt, "seed": seed, "duration": 2, "quality": "360p"}})
}

#[tokio::test(flavor = "multi_thread")]
async fn validate_and_create_offer_similar_assets_before_generating() {
    let t = TestServer::start().await;
    let alice = t.user("reuser@example.com").await;
    let bob = t.user("outsider@example.com").await;
    let storm = render_with(
        &t,
        &alice,
        "a lighthouse on a cliff in a storm",
        1,
        2,
        "360p",
    )
    .await;
    let _flowers = render_with(&t, &alice, "sunflowers in a field at noon", 1, 2, "360p").await;
    let (_, a) = t
        .get(&format!("/api/v1/assets/{storm}"), Some(&alice))
        .await;
    let storm_job = a["source_generation_id"].as_str().unwrap().to_owned();

    // Validate names the asset of a similar prompt (not the unrelated one), with how
    // alike; the exact-hash reuse stays as it was.
    let mut req = t2v("a lighthouse on a cliff during a storm", 7);
    req["reuse_min_similarity"] = json!(0.6);
    let (s, v) = t
        .post("/api/v1/generations/validate", Some(&alice), req.clone())
        .await;
    assert_eq!(s, StatusCode::OK, "{v}");
    assert!(v["reusable_asset_id"].is_null());
    let similar = v["similar_assets"].as_array().unwrap();
    assert_eq!(similar.len(), 1, "{v}");
    assert_eq!(similar[0]["asset"]["id"], storm.as_str());
    assert_eq!(similar[0]["matched_by"], "prompt");
    let alike = similar[0]["similarity"].as_f64().unwrap();
    assert!((0.6..1.0).contains(&alike), "{v}");
    // Above the threshold asked for, nothing.
    let mut strict = req.clone();
    strict["reuse_min_similarity"] = json!(0.99);
    let (_, v) = t
        .post("/api/v1/generations/validate", Some(&alice), strict)
        .await;
    assert_eq!(v["similar_assets"], json!([]), "{v}");
    // Another user's assets are never offered.
    let (_, v) = t
        .post("/api/v1/generations/validate", Some(&bob), req.clone())
        .await;
    assert_eq!(v["similar_assets"], json!([]), "{v}");

    // The default (`exact`) generates: no asset has this hash.
    let (s, g) = create(&t, &alice, req.clone()).await;
    assert_eq!(s, StatusCode::CREATED, "{g}");
    assert_ne!(g["status"], "completed", "{g}");
    assert!(
        g.get("similar_assets").is_none(),
        "only a similar create answers them: {g}"
    );
    // `similar` reuses the alike asset at once, and says what it found.
    let mut similar_req = t2v("a lighthouse on a cliff during a storm at dusk", 8);
    similar_req["reuse"] = json!("similar");
    similar_req["reuse_min_similarity"] = json!(0.6);
    let (s, g) = create(&t, &alice, similar_req.clone()).await;
    assert_eq!(s, StatusCode::CREATED, "{g}");
    assert_eq!(g["status"], "completed", "{g}");
    assert_eq!(g["asset_id"], storm.as_str());
    assert_eq!(g["reused_from"], storm_job.as_str());
    assert_eq!(g["similar_assets"][0]["asset"]["id"], storm.as_str());
    // Bob's `similar` create finds nothing of Alice's: it generates.
    let (s, g) = create(&t, &bob, similar_req).await;
    assert_eq!(s, StatusCode::CREATED, "{g}");
    assert_eq!(g["status"], "pending", "{g}");
    assert!(g["asset_id"].is_null());

    // `never` generates even with the same hash; `exact` with the same hash reuses.
    let mut never = t2v("a lighthouse on a cliff in a storm", 1);
    never["reuse"] = json!("never");
    let (_, g) = create(&t, &alice, never).await;
    assert_eq!(g["status"], "pending", "{g}");
    assert_eq!(g["force_new"], true);
    let (_, g) = create(&t, &alice, t2v("a lighthouse on a cliff in a storm", 1)).await;
    assert_eq!(
        (&g["status"], &g["asset_id"]),
        (&json!("completed"), &json!(storm)),
        "{g}"
    );

    // Contradictions and bad thresholds are refused with the field named.
    for (body, field) in [
        (json!({"force_new": true, "reuse": "similar"}), "reuse"),
        (json!({"reuse_min_similarity": 1.5}), "reuse_min_similarity"),
    ] {
        let mut r = t2v("a lighthouse", 1);
        for (k, v) in body.as_object().unwrap() {
            r[k] = v.clone();
        }
        let (s, v) = create(&t, &alice, r).await;
        assert_eq!(s, StatusCode::UNPROCESSABLE_ENTITY, "{v}");
        let issues = v["error"]["details"]["issues"].as_array().unwrap();
        assert!(issues.iter().any(|i| i["field"] == field), "{v}");
    }
    let (s, v) = create(
        &t,
        &alice,
        json!({"operation": "text_to_video", "params": {"prompt": "x"}, "reuse": "sometimes"}),
    )
    .await;
    assert!(
        s == StatusCode::UNPROCESSABLE_ENTITY || s == StatusCode::BAD_REQUEST,
        "{v}"
    );
    t.stop().await;
}

/// The media URL of the `NodeEntered` of `node` among a REST session's events.
fn entered_media(events: &Value, node: &str) -> Value {
    events
        .as_array()
        .unwrap()
        .iter()
        .find_map(|e| {
            let n = &e["event"]["NodeEntered"];
            (n["node"] == node).then(|| n["media"].clone())
        })
        .unwrap_or_else(|| panic!("no NodeEntered {node}: {events}"))
}

async fn content_error(t: &TestServer) -> Value {
    t.get("/health", None).await.1["content"]["last_error"].clone()
}

#[tokio::test(flavor = "multi_thread")]
async fn a_scene_plays_a_clip_a_branch_point_and_a_variant_of_the_library() {
    let scenes = tests::copy_demo_scenes();
    let dir = scenes.0.clone();
    let t = TestServer::start_with(|c| {
        c.content.scenes_dir = dir;
        c.content.reload_interval_ms = 50;
    })
    .await;
    let admin = t.admin("writer@example.com").await;
    let player = t.user("player@example.com").await;
    let main = render_with(&t, &admin, "a night market under lanterns", 1, 3, "720p").await;
    let north = render_with(&t, &admin, "a boat heading north into fog", 2, 2, "720p").await;
    let south = render_with(
        &t,
        &admin,
        "a boat heading south into the sun",
        3,
        2,
        "720p",
    )
    .await;
    // The player cannot fetch the writer's media until it is published to the scenes.
    let (s, _, _) = bytes_of(&t, &player, &format!("/api/v1/assets/{main}/file")).await;
    assert_eq!(s, StatusCode::NOT_FOUND);
    let (s, _) = t
        .call(
            Method::PATCH,
            &format!("/api/v1/assets/{main}"),
            Some(&player),
            Some(json!({"publish": true})),
        )
        .await;
    assert_eq!(s, StatusCode::NOT_FOUND, "not the player's");
    for id in [&main, &north, &south] {
        let (s, a) = t
            .call(
                Method::PATCH,
                &format!("/api/v1/assets/{id}"),
                Some(&admin),
                Some(json!({"publish": true})),
            )
            .await;
        assert_eq!(s, StatusCode::OK, "{a}");
        assert_eq!(a["owner_id"], "00000000-0000-0000-0000-00000000c0de");
    }
    // A clip of the published video, and a branch point whose first variant's
    // condition never holds (world time is never negative): the second is drawn.
    let (s, clip) = t
        .post(
            &format!("/api/v1/assets/{main}/clips"),
            Some(&admin),
            json!({"start_ms": 1000, "end_ms": 2500, "label": "lanterns"}),
        )
        .await;
    assert_eq!(s, StatusCode::CREATED, "{clip}");
    let clip_id = clip["id"].as_str().unwrap().to_owned();
    let (s, branch) = t
        .post(
            &format!("/api/v1/assets/{main}/branches"),
            Some(&admin),
            json!({"at_ms": 2500, "variants": [
                {"key": "north", "weight": 5, "condition": "time < 0", "asset_id": north},
                {"key": "south", "weight": 1, "asset_id": south}]}),
        )
        .await;
    assert_eq!(s, StatusCode::CREATED, "{branch}");
    let branch_id = branch["id"].as_str().unwrap().to_owned();

    let scene = format!(
        r#"id = "market"
title = "The Night Market"
entry = "stalls"

[[nodes]]
id = "stalls"
kind = "media"
clip = "{clip_id}"

[[nodes]]
id = "harbour"
kind = "media"
branch = "{branch_id}"
variant = "360p"

[[nodes]]
id = "market_end"
kind = "end"
outcome = "neutral"

[[edges]]
id = "to_harbour"
from = "stalls"
to = "harbour"
label = "Walk to the harbour"

[[edges]]
id = "leave"
from = "harbour"
to = "market_end"
label = "Leave"
"#
    );
    // A clip that does not exist is refused with the file, the node and why; the old
    // content stays.
    let path = scenes.0.join("market.toml");
    std::fs::write(
        &path,
        scene.replace(&clip_id, "00000000-0000-0000-0000-000000000001"),
    )
    .unwrap();
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(15);
    let err = loop {
        let e = content_error(&t).await;
        if e.is_string() {
            break e.as_str().unwrap().to_owned();
        }
        assert!(std::time::Instant::now() < deadline, "never refused");
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    };
    assert!(
        err.contains("market.toml") && err.contains("stalls"),
        "{err}"
    );
    assert!(err.contains("is not a clip of the asset library"), "{err}");

    // The real clip: the scene loads and plays for the player.
    std::fs::write(&path, &scene).unwrap();
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(15);
    let started = loop {
        let (s, v) = t
            .post(
                "/api/v1/game/sessions",
                Some(&player),
                json!({"scene": "market"}),
            )
            .await;
        if s == StatusCode::CREATED {
            break v;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "never loaded: {v} {}",
            content_error(&t).await
        );
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    };
    assert!(content_error(&t).await.is_null());
    let media = entered_media(&started["events"], "stalls");
    assert_eq!(
        media["url"],
        format!("/api/v1/assets/{clip_id}/file"),
        "{media}"
    );
    let (s, file, _) = bytes_of(&t, &player, media["url"].as_str().unwrap()).await;
    assert_eq!(s, StatusCode::OK);
    let (w, h, frames) = decode(&file);
    assert_eq!((w, h, frames), (1280, 720, 36), "the clip's 1.5 s");

    let id = started["id"].as_str().unwrap();
    let (s, moved) = t
        .post(
            &format!("/api/v1/game/sessions/{id}/choose"),
            Some(&player),
            json!({"edge": "to_harbour"}),
        )
        .await;
    assert_eq!(s, StatusCode::OK, "{moved}");
    let media = entered_media(&moved["events"], "harbour");
    assert_eq!(
        media["url"],
        format!("/api/v1/assets/{south}/variants/360p"),
        "the south variant at 360p: {media}"
    );
    let (s, file, _) = bytes_of(&t, &player, media["url"].as_str().unwrap()).await;
    assert_eq!(s, StatusCode::OK);
    let (_, h, _) = decode(&file);
    assert_eq!(h, 360);

    // `scenes validate` checks the library too (it opens the database).
    let state = tests::TempDir::new("validate-state");
    let validate = |dir: &std::path::Path| {
        crate::lifecycle::command(&state.0)
            .env("DATABASE_URL", &t.db.url)
            .args(["scenes", "validate"])
            .arg(dir)
            .output()
            .unwrap()
    };
    let out = validate(&scenes.0);
    assert!(
        out.status.success(),
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(String::from_utf8_lossy(&out.stdout).contains("ok (4 scenes"));
    std::fs::write(
        &path,
        scene.replace(&branch_id, "00000000-0000-0000-0000-000000000002"),
    )
    .unwrap();
    let out = validate(&scenes.0);
    assert!(!out.status.success());
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        stdout.contains("market.toml")
            && stdout.contains("harbour")
            && stdout.contains("is not a branch point"),
        "{stdout}"
    );
    t.stop().await;
}
