//! Daemon configuration with built-in defaults, so that `srtpgate` runs with no file.

use std::net::{IpAddr, Ipv4Addr, SocketAddr};

/// Everything the daemon needs to start. Every field has a default that keeps the
/// daemon on loopback.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Config {
    /// Address of the ng control socket (UDP).
    pub ng_listen: SocketAddr,
    /// Address media ports are bound on.
    pub media_interface: IpAddr,
    /// First media port (inclusive).
    pub port_min: u16,
    /// Last media port (inclusive).
    pub port_max: u16,
}

impl Default for Config {
    fn default() -> Self {
        Config {
            ng_listen: SocketAddr::new(IpAddr::V4(Ipv4Addr::LOCALHOST), 2223),
            media_interface: IpAddr::V4(Ipv4Addr::LOCALHOST),
            port_min: 30000,
            port_max: 39999,
        }
    }
}

/// A configuration that cannot be used, with the reason.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum ConfigError {
    #[error("port range {min}-{max} is empty or inverted")]
    EmptyPortRange { min: u16, max: u16 },
    #[error("port range {min}-{max} holds fewer than two ports; media needs RTP/RTCP pairs")]
    PortRangeTooSmall { min: u16, max: u16 },
}

impl Config {
    /// Checks the invariants a running daemon relies on.
    pub fn validate(&self) -> Result<(), ConfigError> {
        let (min, max) = (self.port_min, self.port_max);
        if min > max {
            return Err(ConfigError::EmptyPortRange { min, max });
        }
        if max - min < 1 {
            return Err(ConfigError::PortRangeTooSmall { min, max });
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_are_loopback_and_valid() {
        let c = Config::default();
        assert!(c.ng_listen.ip().is_loopback());
        assert!(c.media_interface.is_loopback());
        assert_eq!(c.ng_listen.port(), 2223);
        c.validate().unwrap();
    }

    #[test]
    fn inverted_range_is_rejected() {
        let c = Config {
            port_min: 40000,
            port_max: 30000,
            ..Config::default()
        };
        assert_eq!(
            c.validate(),
            Err(ConfigError::EmptyPortRange {
                min: 40000,
                max: 30000
            })
        );
        let c = Config {
            port_min: 40000,
            port_max: 40000,
            ..Config::default()
        };
        assert_eq!(
            c.validate(),
            Err(ConfigError::PortRangeTooSmall {
                min: 40000,
                max: 40000
            })
        );
    }
}
