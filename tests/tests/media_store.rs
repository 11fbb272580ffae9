//! The NATS media store (`VIDSEEK_MEDIA_STORE=nats`) on a real nats-server:
//! objects larger than a chunk come back byte for byte, a video's
//! thumbnails are deleted (and the delete can be repeated after an
//! interruption) without touching another's, and on a server configured
//! from `vidseek_bus::access` each role reaches exactly the buckets its work
//! needs.

use std::time::Duration;

use async_nats::jetstream;
use futures::TryStreamExt;
use vidseek_bus::access::Role;
use vidseek_bus::media_store::{Bucket, MediaStore, thumb_name};
use vidseek_tests::nats::NatsServer;
use vidseek_tests::secure_nats::{Auth, SecureNats};

const NO_RETRY: Duration = Duration::ZERO;

async fn read_all(store: &MediaStore, bucket: Bucket, name: &str) -> Option<Vec<u8>> {
    let mut object = store.get(bucket, name).await.expect("get")?;
    let mut bytes = Vec::new();
    while let Some(chunk) = object.next_chunk().await.expect("read object") {
        bytes.extend_from_slice(&chunk);
    }
    assert_eq!(bytes.len(), object.info.size, "{name}");
    Some(bytes)
}

/// Bytes that differ from chunk to chunk, so a chunk out of order shows.
fn pattern(len: usize) -> Vec<u8> {
    (0..len).map(|i| (i * 7 % 251) as u8).collect()
}

#[tokio::test]
async fn objects_round_trip_and_a_videos_thumbnails_are_deleted() {
    let nats = NatsServer::start();
    let js = jetstream::new(nats.client().await);
    vidseek_bus::streams::ensure_all(&js, 1).await.unwrap();
    // Twice: set-up is idempotent, as every process runs it.
    vidseek_bus::streams::ensure_all(&js, 1).await.unwrap();
    let store = MediaStore::open(&js).await.unwrap();

    // Several chunks (the store cuts at 128 KiB).
    let video = pattern(300 * 1024 + 17);
    let info = store
        .put(Bucket::Uploads, "u1/clip.mp4", &mut video.as_slice())
        .await
        .unwrap();
    assert_eq!(info.size, video.len());
    assert_eq!(
        read_all(&store, Bucket::Uploads, "u1/clip.mp4").await,
        Some(video.clone())
    );
    // A range across chunk boundaries, as the gateway serves one.
    let (start, len) = (128 * 1024 - 10, 128 * 1024 + 20);
    let reader = store.get(Bucket::Uploads, "u1/clip.mp4").await.unwrap();
    let part: Vec<Vec<u8>> = reader
        .expect("the upload")
        .byte_range(start as u64, len as u64)
        .map_ok(|chunk| chunk.to_vec())
        .try_collect()
        .await
        .unwrap();
    assert_eq!(part.concat(), video[start..start + len]);
    assert_eq!(
        read_all(&store, Bucket::Uploads, "u1/other.mp4").await,
        None
    );
    assert_eq!(read_all(&store, Bucket::Thumbs, "u1/clip.mp4").await, None);

    for (video_id, count) in [("v1", 5), ("v2", 2)] {
        for index in 0..count {
            let jpeg = format!("{video_id} thumbnail {index}");
            store
                .put(
                    Bucket::Thumbs,
                    &thumb_name(video_id, index),
                    &mut jpeg.as_bytes(),
                )
                .await
                .unwrap();
        }
    }
    assert_eq!(
        read_all(&store, Bucket::Thumbs, "v1/3.jpg")
            .await
            .as_deref(),
        Some(&b"v1 thumbnail 3"[..])
    );
    // The record may know fewer segments than there are thumbnails (a job
    // that failed after writing some): the rest are found too.
    store.delete_thumbs("v1", 2).await.unwrap();
    for index in 0..5 {
        assert_eq!(
            store
                .info(Bucket::Thumbs, &thumb_name("v1", index))
                .await
                .unwrap(),
            None,
            "v1/{index}.jpg"
        );
    }
    // A repeated delete (the first was interrupted) finishes quietly.
    store.delete_thumbs("v1", 5).await.unwrap();
    for index in 0..2 {
        assert!(
            read_all(&store, Bucket::Thumbs, &thumb_name("v2", index))
                .await
                .is_some(),
            "another video's thumbnail {index} was deleted"
        );
    }
    // A thumbnail written again after a delete is served again.
    store
        .put(Bucket::Thumbs, "v1/0.jpg", &mut &b"again"[..])
        .await
        .unwrap();
    assert_eq!(
        read_all(&store, Bucket::Thumbs, "v1/0.jpg")
            .await
            .as_deref(),
        Some(&b"again"[..])
    );
    assert!(store.delete(Bucket::Uploads, "u1/clip.mp4").await.unwrap());
    assert!(!store.delete(Bucket::Uploads, "u1/none.mp4").await.unwrap());
    assert_eq!(read_all(&store, Bucket::Uploads, "u1/clip.mp4").await, None);
}

#[tokio::test]
async fn each_role_reaches_the_buckets_its_work_needs() {
    let nats = SecureNats::start(Auth::Roles, None);
    let url = nats.url();
    let open = |role: Role| {
        let (url, access) = (url.clone(), nats.access(role));
        async move {
            let client = vidseek_bus::connect(&url, "t", &access, NO_RETRY)
                .await
                .unwrap_or_else(|e| panic!("connect as {role:?}: {e}"));
            let js = jetstream::new(client);
            vidseek_bus::streams::ensure_all(&js, 1)
                .await
                .unwrap_or_else(|e| panic!("{role:?} sets up the streams: {e}"));
            MediaStore::open(&js)
                .await
                .unwrap_or_else(|e| panic!("{role:?} opens the media store: {e}"))
        }
    };
    let ingest = open(Role::Ingest).await;
    let gateway = open(Role::Gateway).await;

    // The gateway receives an upload and plays it back.
    let upload = pattern(200 * 1024);
    gateway
        .put(Bucket::Uploads, "u1/clip.mp4", &mut upload.as_slice())
        .await
        .expect("the gateway stores uploads");
    assert_eq!(
        read_all(&gateway, Bucket::Uploads, "u1/clip.mp4").await,
        Some(upload.clone())
    );
    // Ingest downloads it, writes thumbnails, and deletes both.
    assert_eq!(
        read_all(&ingest, Bucket::Uploads, "u1/clip.mp4").await,
        Some(upload)
    );
    ingest
        .put(Bucket::Thumbs, "v1/0.jpg", &mut &b"jpeg"[..])
        .await
        .expect("ingest writes thumbnails");
    // Any gateway serves them.
    assert_eq!(
        read_all(&gateway, Bucket::Thumbs, "v1/0.jpg")
            .await
            .as_deref(),
        Some(&b"jpeg"[..])
    );
    // The gateway cannot write a thumbnail (one for a video it does not
    // hold would be served as that video's picture).
    let forged = tokio::time::timeout(
        Duration::from_secs(15),
        gateway.put(Bucket::Thumbs, "v1/1.jpg", &mut &b"forged"[..]),
    )
    .await;
    assert!(
        !matches!(forged, Ok(Ok(_))),
        "the gateway wrote a thumbnail"
    );
    assert_eq!(ingest.info(Bucket::Thumbs, "v1/1.jpg").await.unwrap(), None);
    ingest
        .delete_thumbs("v1", 1)
        .await
        .expect("ingest deletes thumbnails");
    assert!(
        ingest
            .delete(Bucket::Uploads, "u1/clip.mp4")
            .await
            .expect("ingest deletes uploads")
    );
    assert_eq!(read_all(&gateway, Bucket::Thumbs, "v1/0.jpg").await, None);
    assert_eq!(
        read_all(&gateway, Bucket::Uploads, "u1/clip.mp4").await,
        None
    );
}
