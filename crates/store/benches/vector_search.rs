//! Similarity search benchmark (issue #23): `store::generation::embeddings::nearest`
//! over `BENCH_VECTORS` (100,000) asset embeddings in an embedded PostgreSQL 18 with
//! pgvector 0.8 and the migrations' HNSW index (`halfvec_cosine_ops`, default m = 16,
//! ef_construction = 64; the query's `hnsw.ef_search` = 100, iterative scan).
//!
//! The vectors are shaped like the visual embedder's: 267 meaningful dimensions (the
//! rest of the column's 1024 zero), unit length, drawn around 2,000 random centres (as
//! families of renders of one prompt), so that neighbours exist. Each query is a stored
//! asset's vector, its owner's assets only (the route's filter: a tenth of the table),
//! 10 results. Prints the index build time, latency p50/p99 over `BENCH_QUERIES` (500)
//! queries after a fifth as many untimed ones (the cache warm, as in a running server),
//! and recall@10 against exact search (the same query without the index).
//!
//! `cargo bench -p store --bench vector_search`.
#![allow(clippy::unwrap_used)]

use std::time::{Duration, Instant};

use rand::{Rng, SeedableRng};
use store::generation::embeddings::{self, NearestQuery};
use uuid::Uuid;

const DIMS: usize = 1024;
const USED: usize = 267;

fn env_num(name: &str, default: u64) -> u64 {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

fn unit(v: &mut [f32]) {
    let n = v.iter().map(|x| x * x).sum::<f32>().sqrt().max(1e-12);
    for x in v {
        *x /= n;
    }
}

fn pct(sorted: &[Duration], p: f64) -> f64 {
    let i = ((p * sorted.len() as f64).ceil() as usize).clamp(1, sorted.len()) - 1;
    sorted[i].as_secs_f64() * 1e3
}

fn main() {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(run());
}

async fn run() {
    let n = env_num("BENCH_VECTORS", 100_000) as usize;
    let queries = env_num("BENCH_QUERIES", 500) as usize;
    let dir = std::env::temp_dir().join(format!("pixsim-vector-bench-{}", Uuid::new_v4().simple()));
    std::fs::create_dir_all(&dir).unwrap();
    let pg = tokio::task::spawn_blocking({
        let data = dir.join("pg");
        move || {
            let mut opts = embedded::postgres::PgOptions::new(data);
            // BENCH_PG_SETTINGS="shared_buffers=1GB,…": settings to compare.
            if let Ok(extra) = std::env::var("BENCH_PG_SETTINGS") {
                for kv in extra.split(',').filter(|s| !s.is_empty()) {
                    if let Some((k, v)) = kv.split_once('=') {
                        opts.extra_settings.push((k.trim().into(), v.trim().into()));
                    }
                }
            }
            embedded::postgres::EmbeddedPostgres::start(opts)
        }
    })
    .await
    .unwrap()
    .unwrap();
    let pool = store::connect(&store::PoolConfig {
        url: pg.url("postgres"),
        max_connections: 4,
        acquire_timeout: Duration::from_secs(60),
    })
    .await
    .unwrap();
    store::MIGRATOR.run(&pool).await.unwrap();

    // Ten owners; their assets interleaved.
    let owners: Vec<Uuid> = (0..10).map(|_| Uuid::now_v7()).collect();
    for (i, o) in owners.iter().enumerate() {
        sqlx::query("INSERT INTO users (id, email, password_hash, display_name, role) VALUES ($1, $2, 'x', 'bench', 'user')")
            .bind(o)
            .bind(format!("vector-bench-{i}@example.com"))
            .execute(&pool)
            .await
            .unwrap();
    }
    // Bulk load without the index, then build it (as a backfill would be followed by
    // REINDEX; the build time is reported).
    sqlx::query("DROP INDEX assets_embedding_hnsw_idx")
        .execute(&pool)
        .await
        .unwrap();
    let mut rng = rand::rngs::StdRng::seed_from_u64(23);
    let centres: Vec<Vec<f32>> = (0..2000)
        .map(|_| {
            let mut c: Vec<f32> = (0..USED).map(|_| rng.random::<f32>() - 0.5).collect();
            unit(&mut c);
            c
        })
        .collect();
    let mut ids = Vec::with_capacity(n);
    let load = Instant::now();
    let batch = 500;
    let mut i = 0;
    while i < n {
        let m = batch.min(n - i);
        let mut b_ids = Vec::with_capacity(m);
        let mut b_owner = Vec::with_capacity(m);
        let mut b_vec = Vec::with_capacity(m);
        for k in 0..m {
            let c = &centres[rng.random_range(0..centres.len())];
            let mut v: Vec<f32> = c
                .iter()
                .map(|x| x + (rng.random::<f32>() - 0.5) * 0.08)
                .collect();
            unit(&mut v);
            v.resize(DIMS, 0.0);
            let id = Uuid::now_v7();
            b_ids.push(id);
            b_owner.push(owners[(i + k) % owners.len()]);
            b_vec.push(embeddings::vector_text(&v));
            ids.push(id);
        }
        sqlx::query(
            "INSERT INTO assets (id, owner_id, media_type, mime, content_hash, size_bytes, path,
                 origin, embedding, embedder, embedded_at)
             SELECT i, o, 'image', 'image/png', 'h', 1, 'p', 'uploaded', v::halfvec, 'visual/1', now()
             FROM unnest($1::uuid[], $2::uuid[], $3::text[]) AS t(i, o, v)",
        )
        .bind(&b_ids)
        .bind(&b_owner)
        .bind(&b_vec)
        .execute(&pool)
        .await
        .unwrap();
        i += m;
    }
    let loaded = load.elapsed();
    sqlx::query("SET maintenance_work_mem = '1GB'")
        .execute(&pool)
        .await
        .ok();
    let build = Instant::now();
    // One connection: the SET above is per session.
    let mut conn = pool.acquire().await.unwrap();
    sqlx::query("SET maintenance_work_mem = '1GB'")
        .execute(&mut *conn)
        .await
        .unwrap();
    sqlx::query(
        "CREATE INDEX assets_embedding_hnsw_idx ON assets USING hnsw (embedding halfvec_cosine_ops)",
    )
    .execute(&mut *conn)
    .await
    .unwrap();
    drop(conn);
    let built = build.elapsed();
    // As autovacuum would leave it (hint bits set, statistics current).
    sqlx::query("VACUUM (ANALYZE) assets")
        .execute(&pool)
        .await
        .unwrap();

    // How the database runs one query (printed: the plan is the figure's explanation).
    if std::env::var("BENCH_EXPLAIN").is_ok() {
        let id = ids[0];
        let vector = embeddings::vector_of(&pool, id, "visual/1")
            .await
            .unwrap()
            .unwrap();
        let mut tx = pool.begin().await.unwrap();
        sqlx::query("SET LOCAL hnsw.iterative_scan = relaxed_order")
            .execute(&mut *tx)
            .await
            .unwrap();
        sqlx::query("SET LOCAL enable_seqscan = off")
            .execute(&mut *tx)
            .await
            .unwrap();
        let plan: Vec<String> = sqlx::query_scalar(
            "EXPLAIN (ANALYZE, BUFFERS) SELECT id, (embedding <=> $1::text::halfvec)::float8
             FROM assets WHERE embedding IS NOT NULL AND embedder = 'visual/1' AND id <> $2
               AND array_position($3, owner_id) IS NOT NULL
             ORDER BY embedding <=> $1::text::halfvec LIMIT 10",
        )
        .bind(&vector)
        .bind(id)
        .bind(vec![owners[0]])
        .fetch_all(&mut *tx)
        .await
        .unwrap();
        tx.commit().await.unwrap();
        println!("{}", plan.join("\n"));
    }

    // Queries: stored vectors, each owner's assets only; the first `warm` ones are not
    // timed (a running server's index is in the cache).
    let warm = queries / 5;
    let mut lat = Vec::with_capacity(queries);
    let mut recall_hits = 0usize;
    let mut recall_total = 0usize;
    for q in 0..queries + warm {
        let id = ids[rng.random_range(0..ids.len())];
        let owner = [owners[q % owners.len()]];
        let vector = embeddings::vector_of(&pool, id, "visual/1")
            .await
            .unwrap()
            .unwrap();
        let query = NearestQuery {
            vector: &vector,
            embedder: "visual/1",
            exclude: Some(id),
            owners: Some(&owner),
            media_type: None,
            created_after: None,
            created_before: None,
            tags: &[],
            include_archived: false,
            limit: 10,
        };
        let t = Instant::now();
        let got = embeddings::nearest(&pool, &query).await.unwrap();
        if q < warm {
            continue;
        }
        lat.push(t.elapsed());
        // Exact: the same ordering without the index.
        if q % 5 == 0 {
            let mut tx = pool.begin().await.unwrap();
            sqlx::query("SET LOCAL enable_indexscan = off")
                .execute(&mut *tx)
                .await
                .unwrap();
            let exact: Vec<Uuid> = sqlx::query_scalar(
                "SELECT id FROM assets WHERE embedding IS NOT NULL AND id <> $2 AND owner_id = $3
                 ORDER BY embedding <=> $1::text::halfvec LIMIT 10",
            )
            .bind(&vector)
            .bind(id)
            .bind(owner[0])
            .fetch_all(&mut *tx)
            .await
            .unwrap();
            tx.commit().await.unwrap();
            recall_total += exact.len();
            recall_hits += exact
                .iter()
                .filter(|e| got.iter().any(|g| g.0 == **e))
                .count();
        }
    }
    lat.sort();
    let recall = recall_hits as f64 / recall_total.max(1) as f64;
    println!(
        "== vector search: {n} halfvec vectors (1024 dims, 267 used), HNSW m=16 ef_construction=64, ef_search=100, iterative scan ==",
    );
    println!(
        "load {:.1} s · index build {:.1} s",
        loaded.as_secs_f64(),
        built.as_secs_f64()
    );
    println!(
        "search (a tenth of the table visible, 10 results): p50 {:.2} ms · p99 {:.2} ms · max {:.2} ms over {queries} queries (target p99 ≤ 10 ms)",
        pct(&lat, 0.5),
        pct(&lat, 0.99),
        pct(&lat, 1.0)
    );
    println!(
        "recall@10 against exact search: {:.3} ({recall_hits}/{recall_total})",
        recall
    );
    drop(pool);
    drop(pg);
    let _ = std::fs::remove_dir_all(&dir);
}
