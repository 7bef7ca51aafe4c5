//! Does io_uring make a byte relay cheaper than epoll with one `recv` and one `send` per
//! message, the way pgscope's relay and pgbouncer work? Measured end to end, on loopback TCP:
//!
//! - N client threads play pgbench: each sends a 90-byte request and waits for a 130-byte
//!   answer, over and over, for the given seconds;
//! - N server threads play PostgreSQL backends: each answers every request;
//! - one relay thread sits between them, either an epoll loop (level-triggered, `recv` then
//!   `send`) or an io_uring loop (one `recv` armed per socket; on its completion a `send` to
//!   the peer linked to the next `recv`; `SINGLE_ISSUER | DEFER_TASKRUN`, one
//!   `io_uring_enter` per loop turn).
//!
//! It prints round trips per second, the relay thread's CPU per round trip, the whole
//! process's CPU per round trip and context switches per round trip (system-wide). The relay
//! thread's CPU alone misleads: work can move to the threads that wake it.
//!
//! `cargo run --release -- epoll 8 4` / `cargo run --release -- uring 8 4`

use io_uring::{opcode, squeue, types, IoUring};
use std::io::{Read, Write};
use std::net::{Shutdown, TcpListener, TcpStream};
use std::os::fd::AsRawFd;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

const REQUEST: usize = 90;
const ANSWER: usize = 130;
const BUF: usize = 64 * 1024;

fn thread_cpu_seconds() -> f64 {
    let mut ts = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: a valid out-pointer to a timespec.
    unsafe { libc::clock_gettime(libc::CLOCK_THREAD_CPUTIME_ID, &mut ts) };
    ts.tv_sec as f64 + ts.tv_nsec as f64 * 1e-9
}

/// utime + stime of the whole process, in seconds.
fn process_cpu_seconds() -> f64 {
    let stat = std::fs::read_to_string("/proc/self/stat").unwrap();
    let fields: Vec<&str> = stat
        .rsplit(')')
        .next()
        .unwrap()
        .split_whitespace()
        .collect();
    let ticks: f64 = fields[11].parse::<f64>().unwrap() + fields[12].parse::<f64>().unwrap();
    ticks / 100.0
}

fn context_switches() -> u64 {
    let stat = std::fs::read_to_string("/proc/stat").unwrap();
    let line = stat.lines().find(|l| l.starts_with("ctxt")).unwrap();
    line.split_whitespace().nth(1).unwrap().parse().unwrap()
}

/// The "backends": one thread per connection, answering each request.
fn start_server() -> u16 {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    std::thread::spawn(move || {
        for conn in listener.incoming() {
            let mut conn = conn.unwrap();
            conn.set_nodelay(true).unwrap();
            std::thread::spawn(move || {
                let mut request = [0u8; REQUEST];
                let answer = [7u8; ANSWER];
                while conn.read_exact(&mut request).is_ok() {
                    if conn.write_all(&answer).is_err() {
                        break;
                    }
                }
            });
        }
    });
    port
}

fn main() {
    let mut args = std::env::args().skip(1);
    let mode = args.next().expect("mode: epoll or uring");
    let clients: usize = args.next().map_or(8, |a| a.parse().unwrap());
    let seconds: u64 = args.next().map_or(5, |a| a.parse().unwrap());

    let server_port = start_server();
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let relay_port = listener.local_addr().unwrap().port();
    let stop_clients = Arc::new(AtomicBool::new(false));
    let round_trips = Arc::new(AtomicU64::new(0));
    let client_threads: Vec<_> = (0..clients)
        .map(|_| {
            let stop = stop_clients.clone();
            let count = round_trips.clone();
            std::thread::spawn(move || {
                let mut conn = TcpStream::connect(("127.0.0.1", relay_port)).unwrap();
                conn.set_nodelay(true).unwrap();
                let request = [1u8; REQUEST];
                let mut answer = [0u8; ANSWER];
                let mut done = 0;
                while !stop.load(Ordering::Relaxed) {
                    conn.write_all(&request).unwrap();
                    conn.read_exact(&mut answer).unwrap();
                    done += 1;
                }
                count.fetch_add(done, Ordering::Relaxed);
            })
        })
        .collect();

    // Sockets in pairs: 2i faces client i, 2i + 1 its server connection.
    let mut sockets = Vec::new();
    for _ in 0..clients {
        let (client, _) = listener.accept().unwrap();
        let server = TcpStream::connect(("127.0.0.1", server_port)).unwrap();
        client.set_nodelay(true).unwrap();
        server.set_nodelay(true).unwrap();
        sockets.push(client);
        sockets.push(server);
    }
    let fds: Vec<i32> = sockets.iter().map(|s| s.as_raw_fd()).collect();
    let stop_relay = Arc::new(AtomicBool::new(false));
    let stop = stop_relay.clone();
    let relay = std::thread::spawn(move || {
        let start = thread_cpu_seconds();
        match mode.as_str() {
            "epoll" => epoll_relay(&fds, &stop),
            "uring" => uring_relay(&fds, &stop),
            other => panic!("unknown mode {other}: epoll or uring"),
        }
        thread_cpu_seconds() - start
    });

    let (cpu0, cs0) = (process_cpu_seconds(), context_switches());
    std::thread::sleep(Duration::from_secs(seconds));
    let (cpu1, cs1) = (process_cpu_seconds(), context_switches());
    stop_clients.store(true, Ordering::Relaxed);
    for c in client_threads {
        c.join().unwrap();
    }
    // The relay may be waiting for a completion: end its sockets so that every recv returns.
    stop_relay.store(true, Ordering::Relaxed);
    for s in &sockets {
        let _ = s.shutdown(Shutdown::Both);
    }
    let relay_cpu = relay.join().unwrap();
    let n = round_trips.load(Ordering::Relaxed) as f64;
    println!(
        "round trips/s {:.0}  relay thread {:.2} us/rt  process {:.2} us/rt  context switches {:.2}/rt",
        n / seconds as f64,
        relay_cpu * 1e6 / n,
        (cpu1 - cpu0) * 1e6 / n,
        (cs1 - cs0) as f64 / n
    );
}

/// What pgscope's relay and pgbouncer do: wait for readiness, `recv`, `send` to the peer.
fn epoll_relay(fds: &[i32], stop: &AtomicBool) {
    let mut buf = vec![0u8; BUF];
    // SAFETY: plain system calls on sockets this process owns, with buffers that outlive them.
    unsafe {
        let ep = libc::epoll_create1(0);
        for (i, &fd) in fds.iter().enumerate() {
            libc::fcntl(fd, libc::F_SETFL, libc::O_NONBLOCK);
            let mut ev = libc::epoll_event {
                events: libc::EPOLLIN as u32,
                u64: i as u64,
            };
            libc::epoll_ctl(ep, libc::EPOLL_CTL_ADD, fd, &mut ev);
        }
        let mut events = vec![libc::epoll_event { events: 0, u64: 0 }; 256];
        while !stop.load(Ordering::Relaxed) {
            let ready = libc::epoll_wait(ep, events.as_mut_ptr(), events.len() as i32, 50);
            for e in &events[..ready.max(0) as usize] {
                let i = e.u64 as usize;
                let n = libc::recv(fds[i], buf.as_mut_ptr().cast(), buf.len(), 0);
                let mut sent = 0;
                while n > 0 && sent < n as usize {
                    let w = libc::send(
                        fds[i ^ 1],
                        buf.as_ptr().add(sent).cast(),
                        n as usize - sent,
                        0,
                    );
                    if w > 0 {
                        sent += w as usize;
                    } else {
                        std::thread::yield_now();
                    }
                }
            }
        }
    }
}

/// The same relay on io_uring: a `recv` armed per socket; its completion submits a `send` to
/// the peer linked to the socket's next `recv`, all submitted with the next wait.
fn uring_relay(fds: &[i32], stop: &AtomicBool) {
    let mut ring: IoUring = IoUring::builder()
        .setup_single_issuer()
        .setup_defer_taskrun()
        .build(512)
        .unwrap();
    let mut bufs: Vec<Vec<u8>> = fds.iter().map(|_| vec![0u8; BUF]).collect();
    let recv = |i: usize, bufs: &mut [Vec<u8>]| {
        opcode::Recv::new(types::Fd(fds[i]), bufs[i].as_mut_ptr(), BUF as u32)
            .build()
            .user_data((i as u64) << 1)
    };
    for i in 0..fds.len() {
        let entry = recv(i, &mut bufs);
        // SAFETY: the buffer lives (and is not touched) until the recv completes.
        unsafe { ring.submission().push(&entry).unwrap() };
    }
    let mut done = Vec::new();
    while !stop.load(Ordering::Relaxed) {
        match ring.submitter().submit_and_wait(1) {
            Ok(_) => {}
            Err(e) if e.raw_os_error() == Some(libc::EINTR) => continue,
            Err(e) => panic!("io_uring_enter: {e}"),
        }
        done.clear();
        done.extend(ring.completion().map(|c| (c.user_data(), c.result())));
        for &(user_data, result) in &done {
            let i = (user_data >> 1) as usize;
            if user_data & 1 == 1 || result <= 0 {
                continue; // a failed send, or the socket closed
            }
            let send = opcode::Send::new(types::Fd(fds[i ^ 1]), bufs[i].as_ptr(), result as u32)
                .build()
                .flags(squeue::Flags::IO_LINK | squeue::Flags::SKIP_SUCCESS)
                .user_data(((i as u64) << 1) | 1);
            let next = recv(i, &mut bufs);
            // SAFETY: the linked recv starts only after the send has read the buffer.
            unsafe {
                let mut sq = ring.submission();
                sq.push(&send).unwrap();
                sq.push(&next).unwrap();
            }
        }
    }
}
