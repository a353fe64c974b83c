//! The gRPC health service beside the coordinator (Kubernetes probes use it): SERVING while
//! the coordinator runs, for the whole server ("") and for `taustar.v1.Coordinator`.

use coordinator::server::{self, ServeConfig};
use coordinator::store::{StoreConfig, StudyStore};
use taustar_common::study::Study;
use tonic_health::pb::health_check_response::ServingStatus;
use tonic_health::pb::health_client::HealthClient;
use tonic_health::pb::HealthCheckRequest;

const TOML: &str =
    "name = \"health\"\nseed = 1\n[truth]\nkind = \"two-level\"\nstates = 10\nlow_states = 2\n\
                    gap = 2.0\n[data]\nsamples = 5\n";

#[tokio::test]
async fn the_health_service_reports_serving_for_the_server_and_the_coordinator_service() {
    let dir = tempfile::tempdir().unwrap();
    let loaded = coordinator::study_file::from_parts(Study::from_toml_str(TOML).unwrap(), TOML.into());
    let mut store = StudyStore::open(&dir.path().join("h.db"), StoreConfig::default()).unwrap();
    store.sync_study(&loaded.definition, loaded.study.cells()).unwrap();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let (stop_tx, stop_rx) = tokio::sync::oneshot::channel::<()>();
    let running = server::start(store, listener, ServeConfig::default(), async {
        let _ = stop_rx.await;
    })
    .await
    .unwrap();
    let channel = tonic::transport::Endpoint::from_shared(format!("http://{}", running.addr))
        .unwrap()
        .connect()
        .await
        .unwrap();
    let mut client = HealthClient::new(channel);
    for service in ["", "taustar.v1.Coordinator"] {
        let reply = client.check(HealthCheckRequest { service: service.into() }).await.unwrap().into_inner();
        assert_eq!(reply.status, ServingStatus::Serving as i32, "service {service:?}");
    }
    let unknown = client.check(HealthCheckRequest { service: "nope".into() }).await.unwrap_err();
    assert_eq!(unknown.code(), tonic::Code::NotFound);
    drop(client);
    stop_tx.send(()).unwrap();
    let last = running.wait().await.unwrap();
    assert_eq!(last.cells_total, 1);
}
