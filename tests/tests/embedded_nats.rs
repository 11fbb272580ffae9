//! The embedded stack's own nats-server dying: `vidseek up` starts it again
//! on the same port and store, clients reconnect, the index and the catalog
//! are intact and ingest goes on; when it cannot be started again, the stack
//! stops with a non-zero status and says why, instead of answering 503
//! forever.

use std::os::unix::fs::PermissionsExt;
use std::time::{Duration, Instant};

use serde_json::Value;
use vidseek_tests::media::scene_video;
use vidseek_tests::stack::EmbeddedStack;

/// Children of `parent` whose command name is nats-server.
fn nats_children(parent: u32) -> Vec<u32> {
    let out = std::process::Command::new("pgrep")
        .args(["-P", &parent.to_string(), "nats-server"])
        .output()
        .expect("pgrep");
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .filter_map(|l| l.trim().parse().ok())
        .collect()
}

fn kill_nats_child(stack: &EmbeddedStack) -> u32 {
    let children = nats_children(stack.pid());
    assert_eq!(children.len(), 1, "one nats-server child: {children:?}");
    let status = std::process::Command::new("kill")
        .args(["-KILL", &children[0].to_string()])
        .status()
        .unwrap();
    assert!(status.success());
    children[0]
}

async fn get(http: &reqwest::Client, stack: &EmbeddedStack, path: &str) -> Option<Value> {
    let response = http.get(stack.url(path)).send().await.ok()?;
    if !response.status().is_success() {
        return None;
    }
    response.json().await.ok()
}

/// Polls `path` until `done` accepts its answer.
async fn wait_for(
    http: &reqwest::Client,
    stack: &EmbeddedStack,
    path: &str,
    what: &str,
    done: impl Fn(&Value) -> bool,
) -> Value {
    let deadline = Instant::now() + Duration::from_secs(120);
    loop {
        if let Some(answer) = get(http, stack, path).await
            && done(&answer)
        {
            return answer;
        }
        assert!(Instant::now() < deadline, "{what} did not happen in time");
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_killed_nats_server_is_restarted_and_nothing_is_lost() {
    let media = tempfile::tempdir().unwrap();
    let (first, second) = (media.path().join("a.mp4"), media.path().join("b.mp4"));
    scene_video(&first, 3, 2, "160x120");
    scene_video(&second, 2, 2, "160x120");
    let stack = EmbeddedStack::start(media.path());
    let http = reqwest::Client::new();
    let first_id = stack.ingest_and_wait(&http, &first).await;
    let before = get(&http, &stack, "/api/v1/search?text=a%20scene&k=100")
        .await
        .expect("search before the fault");
    let segments = before["results"].as_array().unwrap().len();
    assert!(segments > 0, "{before}");

    let killed = kill_nats_child(&stack);
    let deadline = Instant::now() + Duration::from_secs(30);
    while nats_children(stack.pid()).iter().all(|&pid| pid == killed) {
        assert!(Instant::now() < deadline, "nats-server was not restarted");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }

    // Queries resume with the same index: the rankers replayed the log.
    wait_for(
        &http,
        &stack,
        "/api/v1/search?text=a%20scene&k=100",
        "search after the restart",
        |answer| answer["results"].as_array().unwrap().len() == segments,
    )
    .await;
    // The catalog survived, and ingest works again.
    let record = get(&http, &stack, &format!("/api/v1/videos/{first_id}"))
        .await
        .expect("the catalog record after the restart");
    assert_eq!(record["status"], "ready", "{record}");
    stack.ingest_and_wait(&http, &second).await;
    assert!(
        stack.log().contains("nats-server restarted"),
        "{}",
        stack.log()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_nats_server_that_cannot_restart_stops_the_stack_with_an_error() {
    let media = tempfile::tempdir().unwrap();
    // A nats-server that starts once: every later start fails, as a broken
    // install or a full disk would.
    let real = std::env::var("NATS_SERVER_BIN").unwrap_or_else(|_| "nats-server".into());
    let bin_dir = tempfile::tempdir().unwrap();
    let wrapper = bin_dir.path().join("nats-server");
    let marker = bin_dir.path().join("started-once");
    std::fs::write(
        &wrapper,
        format!(
            "#!/bin/sh\nif [ -e '{marker}' ]; then echo 'cannot start: broken on purpose' >&2; exit 1; fi\n\
             touch '{marker}'\nexec '{real}' \"$@\"\n",
            marker = marker.display()
        ),
    )
    .unwrap();
    std::fs::set_permissions(&wrapper, std::fs::Permissions::from_mode(0o755)).unwrap();
    let mut stack =
        EmbeddedStack::start_with_env(media.path(), &[("NATS_SERVER_BIN", wrapper.as_os_str())]);

    kill_nats_child(&stack);
    let status = stack
        .wait_exit(Duration::from_secs(60))
        .unwrap_or_else(|| panic!("the stack kept running without NATS:\n{}", stack.log()));
    assert!(!status.success(), "exit status {status}");
    let log = stack.log();
    assert!(
        log.contains("could not be restarted") && log.contains("broken on purpose"),
        "{log}"
    );
}
