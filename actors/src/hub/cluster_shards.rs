//! Who serves a slot of a Redis Cluster now: `CLUSTER SHARDS`, read into a map of slot
//! ranges to master addresses, and how to connect to one master with the seeds'
//! credentials (RESP3, with a push sender for sharded pub/sub).

use redis::aio::MultiplexedConnection;
use redis::{AsyncConnectionConfig, Client, ConnectionAddr, IntoConnectionInfo, Value};
use tokio::sync::mpsc;

use crate::config::RedisConfig;
use crate::redis_link::{Connection, SharedConnection};

/// The masters of a cluster and their slot ranges, as one node saw them.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(super) struct ShardMap {
    /// (first slot, last slot, master address `host:port`).
    ranges: Vec<(u16, u16, String)>,
}

impl ShardMap {
    /// The address of the master serving `slot`, if any.
    pub(super) fn owner(&self, slot: u16) -> Option<&str> {
        self.ranges
            .iter()
            .find(|(from, to, _)| (*from..=*to).contains(&slot))
            .map(|(_, _, addr)| addr.as_str())
    }

    /// Reads a `CLUSTER SHARDS` answer (RESP3 maps or RESP2 flat pairs).
    fn read(value: &Value) -> Option<ShardMap> {
        let mut ranges = Vec::new();
        for shard in as_list(value)? {
            let shard = pairs(shard)?;
            let slots = field(&shard, "slots").and_then(as_list)?;
            let master = field(&shard, "nodes")
                .and_then(as_list)?
                .iter()
                .filter_map(pairs)
                .find(|node| {
                    text(field(node, "role")).as_deref() == Some("master")
                        && text(field(node, "health")).as_deref() != Some("failed")
                });
            let Some(master) = master else { continue };
            let host = text(field(&master, "ip"))
                .filter(|ip| !ip.is_empty() && ip != "?")
                .or_else(|| text(field(&master, "endpoint")))?;
            let port = number(field(&master, "port"))?;
            let addr = format!("{host}:{port}");
            for range in slots.chunks(2) {
                if let [from, to] = range {
                    let (from, to) = (number(Some(from))?, number(Some(to))?);
                    ranges.push((from as u16, to as u16, addr.clone()));
                }
            }
        }
        Some(ShardMap { ranges })
    }
}

fn as_list(value: &Value) -> Option<&[Value]> {
    match value {
        Value::Array(items) | Value::Set(items) => Some(items),
        _ => None,
    }
}

/// A map as (name, value) pairs, from a RESP3 map or a RESP2 flat array.
fn pairs(value: &Value) -> Option<Vec<(String, &Value)>> {
    match value {
        Value::Map(entries) => Some(
            entries
                .iter()
                .filter_map(|(k, v)| Some((text(Some(k))?, v)))
                .collect(),
        ),
        Value::Array(flat) => Some(
            flat.chunks(2)
                .filter_map(|pair| match pair {
                    [k, v] => Some((text(Some(k))?, v)),
                    _ => None,
                })
                .collect(),
        ),
        _ => None,
    }
}

fn field<'a>(pairs: &[(String, &'a Value)], name: &str) -> Option<&'a Value> {
    pairs.iter().find(|(k, _)| k == name).map(|(_, v)| *v)
}

fn text(value: Option<&Value>) -> Option<String> {
    match value? {
        Value::BulkString(bytes) => String::from_utf8(bytes.clone()).ok(),
        Value::SimpleString(text) => Some(text.clone()),
        Value::VerbatimString { text, .. } => Some(text.clone()),
        _ => None,
    }
}

fn number(value: Option<&Value>) -> Option<i64> {
    match value? {
        Value::Int(n) => Some(*n),
        other => text(Some(other))?.parse().ok(),
    }
}

/// Asks the cluster (any node, through the shared cluster connection) who serves what.
pub(super) async fn lookup(
    shared: &SharedConnection,
    config: &RedisConfig,
) -> Result<ShardMap, String> {
    let mut connection: Connection = shared.get().await?;
    let asked = tokio::time::timeout(
        config.command_timeout,
        redis::cmd("CLUSTER")
            .arg("SHARDS")
            .query_async::<Value>(&mut connection),
    )
    .await;
    match asked {
        Ok(Ok(value)) => {
            ShardMap::read(&value).ok_or_else(|| "an unreadable CLUSTER SHARDS answer".to_owned())
        }
        Ok(Err(err)) => {
            shared.failed(&err);
            Err(format!("CLUSTER SHARDS failed: {err}"))
        }
        Err(_) => Err("CLUSTER SHARDS timed out".into()),
    }
}

/// Opens a RESP3 connection to the master at `addr` (`host:port`) with the first seed's
/// credentials; what Redis pushes (sharded messages, unrequested `sunsubscribe`s, the
/// library's disconnection notice) goes to `pushes`.
pub(super) async fn connect(
    config: &RedisConfig,
    addr: &str,
    pushes: mpsc::UnboundedSender<redis::PushInfo>,
) -> Result<MultiplexedConnection, String> {
    let seed = config
        .cluster
        .first()
        .ok_or_else(|| "no seed node".to_owned())?;
    let (host, port) = addr
        .rsplit_once(':')
        .and_then(|(host, port)| Some((host.to_owned(), port.parse::<u16>().ok()?)))
        .ok_or_else(|| format!("a node address without a port: {addr}"))?;
    let info = seed
        .as_str()
        .into_connection_info()
        .map_err(|err| err.to_string())?;
    let settings = info
        .redis_settings()
        .clone()
        .set_protocol(redis::ProtocolVersion::RESP3);
    let info = info
        .set_addr(ConnectionAddr::Tcp(host, port))
        .set_redis_settings(settings);
    let client = Client::open(info).map_err(|err| err.to_string())?;
    let connection = AsyncConnectionConfig::new()
        .set_connection_timeout(Some(config.connect_timeout))
        .set_response_timeout(Some(config.command_timeout))
        .set_push_sender(pushes);
    client
        .get_multiplexed_async_connection_with_config(&connection)
        .await
        .map_err(|err| err.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn bulk(text: &str) -> Value {
        Value::BulkString(text.as_bytes().to_vec())
    }

    #[test]
    fn reads_a_resp3_answer_and_finds_owners() {
        let node = |port: i64, role: &str, health: &str| {
            Value::Map(vec![
                (bulk("id"), bulk("abc")),
                (bulk("port"), Value::Int(port)),
                (bulk("ip"), bulk("127.0.0.1")),
                (bulk("role"), bulk(role)),
                (bulk("health"), bulk(health)),
            ])
        };
        let shard = |slots: Vec<i64>, nodes: Vec<Value>| {
            Value::Map(vec![
                (
                    bulk("slots"),
                    Value::Array(slots.into_iter().map(Value::Int).collect()),
                ),
                (bulk("nodes"), Value::Array(nodes)),
            ])
        };
        let answer = Value::Array(vec![
            shard(
                vec![0, 5460, 10923, 10923],
                vec![
                    node(7001, "replica", "online"),
                    node(7000, "master", "online"),
                ],
            ),
            shard(vec![5461, 10922], vec![node(7002, "master", "online")]),
            shard(vec![10924, 16383], vec![node(7003, "master", "failed")]),
        ]);
        let map = ShardMap::read(&answer).expect("readable");
        assert_eq!(map.owner(0), Some("127.0.0.1:7000"));
        assert_eq!(map.owner(10923), Some("127.0.0.1:7000"));
        assert_eq!(map.owner(6000), Some("127.0.0.1:7002"));
        assert_eq!(map.owner(12000), None);
        assert_eq!(ShardMap::read(&Value::Int(3)), None);
    }
}
