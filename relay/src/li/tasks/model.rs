//! X1 (ETSI TS 103 221-1) objects, with the standard's field names in their JSON mapping.

use std::net::{IpAddr, SocketAddr};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use serde::{Deserialize, Serialize};

use crate::li::uuid::{DId, Xid};

/// What a task or destination carries: IRI (X2), content (X3), or both.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum DeliveryType {
    X2Only,
    X3Only,
    X2andX3,
}

impl DeliveryType {
    pub fn has_x3(self) -> bool {
        matches!(self, DeliveryType::X3Only | DeliveryType::X2andX3)
    }
}

/// One target identifier of a task. JSON: `{"sipUri": "sip:alice@example.com"}`.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub enum TargetIdentifier {
    SipUri(String),
    TelUri(String),
    E164Number(String),
    Impu(String),
    Impi(String),
}

/// Targets are never printed.
impl std::fmt::Debug for TargetIdentifier {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.kind())
    }
}

impl TargetIdentifier {
    /// The identifier's type name, as in X1.
    pub fn kind(&self) -> &'static str {
        match self {
            TargetIdentifier::SipUri(_) => "sipUri",
            TargetIdentifier::TelUri(_) => "telUri",
            TargetIdentifier::E164Number(_) => "e164Number",
            TargetIdentifier::Impu(_) => "impu",
            TargetIdentifier::Impi(_) => "impi",
        }
    }
}

/// The port of a delivery address. JSON: `{"TCPPort": 40000}`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub enum Port {
    #[serde(rename = "TCPPort")]
    Tcp(u16),
}

/// An address and port.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct IpAddressPort {
    pub address: IpAddr,
    pub port: Port,
}

/// Where a destination is. JSON: `{"ipAddressPort": {"address": "…", "port": {"TCPPort": n}}}`.
/// Its Debug form hides the address (destinations stay out of ordinary logs).
#[derive(Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub enum DeliveryAddress {
    IpAddressPort(IpAddressPort),
}

impl std::fmt::Debug for DeliveryAddress {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("DeliveryAddress(…)")
    }
}

impl DeliveryAddress {
    pub fn socket_addr(&self) -> SocketAddr {
        match self {
            DeliveryAddress::IpAddressPort(a) => match a.port {
                Port::Tcp(p) => SocketAddr::new(a.address, p),
            },
        }
    }
}

/// How the connection to a destination is secured (not part of X1, which leaves it to
/// configuration). TLS uses the node's client certificate and the named CA file.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub enum SecurityMode {
    #[default]
    Tcp,
    Tls {
        /// The name the agency's certificate must carry.
        server_name: String,
        /// PEM file with the CA that signed the agency's certificate.
        ca_file: String,
    },
}

impl std::fmt::Debug for SecurityMode {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            SecurityMode::Tcp => "Tcp",
            SecurityMode::Tls { .. } => "Tls",
        })
    }
}

/// TS 103 221-1 DestinationDetails.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct DestinationDetails {
    #[serde(rename = "dId")]
    pub d_id: DId,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub friendly_name: Option<String>,
    pub delivery_type: DeliveryType,
    pub delivery_address: DeliveryAddress,
    #[serde(default)]
    pub security: SecurityMode,
}

/// TS 103 221-1 TaskDetails (the fields this node uses).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct TaskDetails {
    #[serde(rename = "xId")]
    pub x_id: Xid,
    pub target_identifiers: Vec<TargetIdentifier>,
    pub delivery_type: DeliveryType,
    #[serde(rename = "listOfDIDs")]
    pub list_of_dids: Vec<DId>,
    /// RFC 3339 UTC time (`2026-01-31T12:00:00Z`) before which the task is not in force.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub start_time: Option<String>,
    /// RFC 3339 time from which the task is no longer in force.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub end_time: Option<String>,
}

/// Parses `YYYY-MM-DDTHH:MM:SS[.frac](Z|±HH:MM)`.
pub fn parse_rfc3339(s: &str) -> Option<SystemTime> {
    let b = s.as_bytes();
    if b.len() < 20 || !s.is_ascii() {
        return None;
    }
    let num = |r: std::ops::Range<usize>| -> Option<i64> {
        let t = s.get(r)?;
        t.bytes()
            .all(|c| c.is_ascii_digit())
            .then(|| t.parse().ok())?
    };
    if b[4] != b'-' || b[7] != b'-' || !matches!(b[10], b'T' | b't' | b' ') {
        return None;
    }
    if b[13] != b':' || b[16] != b':' {
        return None;
    }
    let (y, mo, d) = (num(0..4)?, num(5..7)?, num(8..10)?);
    let (h, mi, sec) = (num(11..13)?, num(14..16)?, num(17..19)?);
    if !(1..=12).contains(&mo) || !(1..=31).contains(&d) || h > 23 || mi > 59 || sec > 60 {
        return None;
    }
    let mut i = 19;
    let mut nanos = 0u32;
    if b[i] == b'.' {
        let start = i + 1;
        i = start;
        while i < b.len() && b[i].is_ascii_digit() {
            i += 1;
        }
        if i == start {
            return None;
        }
        let frac = &s[start..i.min(start + 9)];
        nanos = frac.parse::<u32>().ok()? * 10u32.pow(9 - frac.len() as u32);
    }
    let offset = match &s[i..] {
        "Z" | "z" => 0,
        o if o.len() == 6 && (o.starts_with('+') || o.starts_with('-')) && &o[3..4] == ":" => {
            let oh = num(i + 1..i + 3)?;
            let om = num(i + 4..i + 6)?;
            let v = oh * 3600 + om * 60;
            if o.starts_with('-') {
                -v
            } else {
                v
            }
        }
        _ => return None,
    };
    // Days from the civil date (proleptic Gregorian), 1970-01-01 = 0.
    let (yy, m) = if mo <= 2 {
        (y - 1, mo + 9)
    } else {
        (y, mo - 3)
    };
    let era = yy.div_euclid(400);
    let yoe = yy - era * 400;
    let doy = (153 * m + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    let days = era * 146_097 + doe - 719_468;
    let secs = days * 86_400 + h * 3600 + mi * 60 + sec - offset;
    let secs = u64::try_from(secs).ok()?;
    Some(UNIX_EPOCH + Duration::new(secs, nanos))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn unix(s: &str) -> Option<f64> {
        parse_rfc3339(s).map(|t| t.duration_since(UNIX_EPOCH).unwrap().as_secs_f64())
    }

    #[test]
    fn rfc3339_times() {
        assert_eq!(unix("1970-01-01T00:00:00Z"), Some(0.0));
        assert_eq!(unix("2000-03-01T00:00:00Z"), Some(951_868_800.0));
        assert_eq!(unix("2020-09-13T12:26:40Z"), Some(1_600_000_000.0));
        assert_eq!(unix("2020-09-13T14:26:40+02:00"), Some(1_600_000_000.0));
        assert_eq!(unix("2020-09-13T12:26:40.25Z"), Some(1_600_000_000.25));
        for bad in [
            "2020-09-13 12:26:40",
            "2020-13-13T12:26:40Z",
            "2020-09-13T12:26:40",
            "2020-09-13T12:26:40+0200",
            "1969-12-31T23:59:59Z",
            "2020-09-13T12:26:40.Z",
            "２020-09-13T12:26:40Z",
        ] {
            assert_eq!(unix(bad), None, "{bad}");
        }
    }

    #[test]
    fn json_names_follow_x1() {
        let t: TaskDetails = serde_json::from_str(
            r#"{"xId": "2b36a78b-b628-416d-bd22-65e63a4b4c2f",
                "targetIdentifiers": [{"sipUri": "sip:a@b"}, {"e164Number": "+4930"}],
                "deliveryType": "X3Only",
                "listOfDIDs": ["8f2f4c4e-1b43-4f7e-9d0a-0a1b2c3d4e5f"],
                "endTime": "2030-01-01T00:00:00Z"}"#,
        )
        .unwrap();
        assert_eq!(t.target_identifiers.len(), 2);
        assert_eq!(
            format!("{:?}", t.target_identifiers),
            "[sipUri, e164Number]"
        );
        let back = serde_json::to_string(&t).unwrap();
        assert!(back.contains("\"listOfDIDs\""), "{back}");
        assert!(back.contains("\"xId\""), "{back}");
        let unknown = r#"{"xId": "2b36a78b-b628-416d-bd22-65e63a4b4c2f",
            "targetIdentifiers": [{"imsi": "262011234567890"}],
            "deliveryType": "X3Only", "listOfDIDs": []}"#;
        assert!(serde_json::from_str::<TaskDetails>(unknown).is_err());
        let d: DestinationDetails = serde_json::from_str(
            r#"{"dId": "8f2f4c4e-1b43-4f7e-9d0a-0a1b2c3d4e5f", "deliveryType": "X2andX3",
                "deliveryAddress": {"ipAddressPort": {"address": "127.0.0.1",
                                                      "port": {"TCPPort": 40000}}}}"#,
        )
        .unwrap();
        assert_eq!(d.delivery_address.socket_addr().port(), 40000);
        assert_eq!(d.security, SecurityMode::Tcp);
    }
}
