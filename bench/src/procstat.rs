//! What /proc says about processes and sockets: CPU time of a process and of its threads,
//! the process that owns a UDP port, and the per-socket drop counters of /proc/net/udp.

use std::collections::HashMap;
use std::fs;
use std::path::Path;

/// CPU time (user + system) and name of one thread.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ThreadCpu {
    pub tid: u32,
    pub name: String,
    pub cpu_ns: u64,
    /// Time spent runnable but waiting for a CPU (schedstat), nanoseconds.
    pub wait_ns: u64,
}

/// Run-queue wait of a thread in nanoseconds (second field of `schedstat`).
pub fn thread_wait_ns(pid: u32, tid: u32) -> Option<u64> {
    let t = fs::read_to_string(format!("/proc/{pid}/task/{tid}/schedstat")).ok()?;
    t.split_whitespace().nth(1)?.parse().ok()
}

/// Clock ticks per second, as /proc counts them.
pub fn clock_ticks() -> u64 {
    // SAFETY: sysconf has no preconditions.
    let hz = unsafe { libc::sysconf(libc::_SC_CLK_TCK) };
    if hz > 0 {
        hz as u64
    } else {
        100
    }
}

/// utime + stime in nanoseconds from the text of a `stat` file.
pub fn parse_stat_cpu_ns(stat: &str) -> Option<u64> {
    // The command name is in parentheses and may hold spaces: fields start after the last ')'.
    let after = stat.rsplit_once(')')?.1;
    let mut f = after.split_whitespace();
    // After ')': state(3) ppid pgrp session tty_nr tpgid flags minflt cminflt majflt cmajflt
    // utime(14) stime(15).
    let utime: u64 = f.nth(11)?.parse().ok()?;
    let stime: u64 = f.next()?.parse().ok()?;
    Some((utime + stime) * 1_000_000_000 / clock_ticks())
}

fn read_cpu(path: &Path) -> Option<u64> {
    parse_stat_cpu_ns(&fs::read_to_string(path).ok()?)
}

/// CPU time of a whole process (all its threads, including those that exited).
pub fn process_cpu_ns(pid: u32) -> Option<u64> {
    read_cpu(Path::new(&format!("/proc/{pid}/stat")))
}

/// CPU time of this process.
pub fn self_cpu_ns() -> Option<u64> {
    read_cpu(Path::new("/proc/self/stat"))
}

/// CPU time of one thread of `pid` (use [`std::process::id`] for this process).
pub fn thread_cpu_ns(pid: u32, tid: u32) -> Option<u64> {
    read_cpu(Path::new(&format!("/proc/{pid}/task/{tid}/stat")))
}

/// Every live thread of `pid` with its name and CPU time.
pub fn threads(pid: u32) -> Vec<ThreadCpu> {
    let Ok(dir) = fs::read_dir(format!("/proc/{pid}/task")) else {
        return Vec::new();
    };
    let mut out = Vec::new();
    for e in dir.flatten() {
        let Some(tid) = e.file_name().to_str().and_then(|s| s.parse::<u32>().ok()) else {
            continue;
        };
        let name = fs::read_to_string(e.path().join("comm"))
            .map(|s| s.trim().to_string())
            .unwrap_or_default();
        if let Some(cpu_ns) = read_cpu(&e.path().join("stat")) {
            let wait_ns = thread_wait_ns(pid, tid).unwrap_or(0);
            out.push(ThreadCpu {
                tid,
                name,
                cpu_ns,
                wait_ns,
            });
        }
    }
    out.sort_by_key(|t| t.tid);
    out
}

/// The name (`comm`) of a process.
pub fn process_name(pid: u32) -> Option<String> {
    fs::read_to_string(format!("/proc/{pid}/comm"))
        .ok()
        .map(|s| s.trim().to_string())
}

/// The calling thread's id.
pub fn gettid() -> u32 {
    // SAFETY: gettid has no preconditions and cannot fail.
    unsafe { libc::gettid() as u32 }
}

/// How many CPUs this thread may run on (its affinity mask).
pub fn allowed_cpus() -> usize {
    // SAFETY: a zeroed cpu_set_t is a valid empty set; sched_getaffinity fills it.
    unsafe {
        let mut set: libc::cpu_set_t = std::mem::zeroed();
        if libc::sched_getaffinity(0, std::mem::size_of::<libc::cpu_set_t>(), &mut set) == 0 {
            let n = libc::CPU_COUNT(&set);
            if n > 0 {
                return n as usize;
            }
        }
    }
    std::thread::available_parallelism().map_or(1, |n| n.get())
}

/// One row of /proc/net/udp or udp6.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct UdpSocketRow {
    pub local_port: u16,
    pub inode: u64,
    pub drops: u64,
}

/// Parses the text of /proc/net/udp (or udp6); rows that do not parse are skipped.
pub fn parse_proc_net_udp(text: &str) -> Vec<UdpSocketRow> {
    let mut rows = Vec::new();
    for line in text.lines().skip(1) {
        let f: Vec<&str> = line.split_whitespace().collect();
        if f.len() < 13 {
            continue;
        }
        let Some(port_hex) = f[1].rsplit_once(':').map(|(_, p)| p) else {
            continue;
        };
        let (Ok(local_port), Ok(inode), Ok(drops)) = (
            u16::from_str_radix(port_hex, 16),
            f[9].parse::<u64>(),
            f[f.len() - 1].parse::<u64>(),
        ) else {
            continue;
        };
        rows.push(UdpSocketRow {
            local_port,
            inode,
            drops,
        });
    }
    rows
}

/// All UDP sockets of this network namespace (IPv4 and IPv6).
pub fn udp_sockets() -> Vec<UdpSocketRow> {
    let mut rows = Vec::new();
    for p in ["/proc/net/udp", "/proc/net/udp6"] {
        if let Ok(t) = fs::read_to_string(p) {
            rows.extend(parse_proc_net_udp(&t));
        }
    }
    rows
}

/// Drops counted by the kernel on the UDP sockets bound to each of `ports` (summed when a
/// port has several sockets). Ports without a socket are left out.
pub fn udp_drops(ports: &[u16]) -> HashMap<u16, u64> {
    let wanted: std::collections::HashSet<u16> = ports.iter().copied().collect();
    let mut out = HashMap::new();
    for r in udp_sockets() {
        if wanted.contains(&r.local_port) {
            *out.entry(r.local_port).or_insert(0) += r.drops;
        }
    }
    out
}

/// The process (other than this one) that holds a UDP socket bound to `port`.
pub fn pid_owning_udp_port(port: u16) -> Option<u32> {
    let inodes: Vec<u64> = udp_sockets()
        .into_iter()
        .filter(|r| r.local_port == port && r.inode != 0)
        .map(|r| r.inode)
        .collect();
    if inodes.is_empty() {
        return None;
    }
    let me = std::process::id();
    let wanted: Vec<String> = inodes.iter().map(|i| format!("socket:[{i}]")).collect();
    for e in fs::read_dir("/proc").ok()?.flatten() {
        let Some(pid) = e.file_name().to_str().and_then(|s| s.parse::<u32>().ok()) else {
            continue;
        };
        if pid == me {
            continue;
        }
        let Ok(fds) = fs::read_dir(e.path().join("fd")) else {
            continue;
        };
        for fd in fds.flatten() {
            if let Ok(target) = fs::read_link(fd.path()) {
                if wanted.iter().any(|w| target.as_os_str() == w.as_str()) {
                    return Some(pid);
                }
            }
        }
    }
    None
}

/// The process ids whose `comm` is exactly `name` (other than this process).
pub fn pids_named(name: &str) -> Vec<u32> {
    let me = std::process::id();
    let Ok(dir) = fs::read_dir("/proc") else {
        return Vec::new();
    };
    let mut out: Vec<u32> = dir
        .flatten()
        .filter_map(|e| e.file_name().to_str()?.parse::<u32>().ok())
        .filter(|&p| p != me && process_name(p).as_deref() == Some(name))
        .collect();
    out.sort_unstable();
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stat_with_spaces_in_the_name() {
        let hz = clock_ticks();
        let s = "1234 (a b) c) S 1 1 1 0 -1 4194560 100 0 0 0 7 3 0 0 20 0 1 0 5 0 0";
        assert_eq!(parse_stat_cpu_ns(s), Some(10 * 1_000_000_000 / hz));
        assert_eq!(parse_stat_cpu_ns("garbage"), None);
    }

    #[test]
    fn net_udp_rows() {
        let t = "   sl  local_address rem_address   st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode ref pointer drops\n\
                 1: 0100007F:08AF 00000000:0000 07 00000000:00000000 00:00000000 00000000     0        0 45678 2 0000000000000000 17\n";
        assert_eq!(
            parse_proc_net_udp(t),
            vec![UdpSocketRow {
                local_port: 0x08AF,
                inode: 45678,
                drops: 17
            }]
        );
    }

    #[test]
    fn own_cpu_is_readable() {
        assert!(self_cpu_ns().is_some());
        assert!(!threads(std::process::id()).is_empty());
    }
}
