//! `VIDSEEK_NATS_URL` as a list of a cluster's nodes: a process connects
//! through a live node while another on the list is down, and carries on
//! through the others when the node it is on dies.

use std::time::{Duration, Instant};

use vidseek_bus::NatsAccess;
use vidseek_tests::cluster::NatsCluster;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_server_list_connects_through_live_nodes_and_fails_over() {
    let mut cluster = NatsCluster::start(3);
    cluster.kill(0);
    // As a fleet's configuration writes it: every node, the dead one first.
    let list = cluster.urls().join(", ");
    let client = vidseek_bus::connect(
        &list,
        "vidseek-test",
        &NatsAccess::default(),
        Duration::from_secs(30),
    )
    .await
    .unwrap_or_else(|e| panic!("cannot connect through {list}: {e}\n{}", cluster.logs()));
    let first = client.server_info().port;
    assert_ne!(
        format!("nats://127.0.0.1:{first}"),
        cluster.node_url(0),
        "connected to the dead node?"
    );
    round_trip(&client).await;

    // The node it is on dies: it moves to the one left.
    let on = (1..3)
        .find(|&i| cluster.node_url(i) == format!("nats://127.0.0.1:{first}"))
        .expect("connected to a listed node");
    cluster.kill(on);
    let deadline = Instant::now() + Duration::from_secs(30);
    while client.server_info().port == first
        || client.connection_state() != async_nats::connection::State::Connected
    {
        assert!(
            Instant::now() < deadline,
            "still not reconnected after 30 s\n{}",
            cluster.logs()
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(
        format!("nats://127.0.0.1:{}", client.server_info().port),
        cluster.node_url(3 - on),
        "not on the last live node"
    );
    round_trip(&client).await;
}

/// A message published on the connection comes back to it.
async fn round_trip(client: &async_nats::Client) {
    use futures::StreamExt;
    let mut echo = client
        .subscribe("vidseek.test.echo")
        .await
        .expect("subscribe");
    client
        .publish("vidseek.test.echo", "ping".into())
        .await
        .expect("publish");
    let message = tokio::time::timeout(Duration::from_secs(10), echo.next())
        .await
        .expect("the message comes back")
        .expect("subscription open");
    assert_eq!(&message.payload[..], b"ping");
}
