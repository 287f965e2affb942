//! One client connection: reads length-prefixed frames, answers a four-letter word if the first four
//! bytes spell one, decodes the handshake and requests, and writes the frames the server task sends back.
//!
//! Decoding happens here, on the connection's own task, so a malformed or oversized frame costs only this
//! connection: it gets an error reply or is closed, and the server task never sees the bytes.

use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use bytes::{Buf, BytesMut};
use tokio::io::{AsyncReadExt, AsyncWriteExt, BufWriter};
use tokio::net::TcpStream;
use tokio::sync::{mpsc, oneshot, Notify};

use crate::jute::{DecodeError, JuteReader, Record};
use crate::proto::client::{decode_request, ConnectRequest, RequestHeader};
use crate::proto::frame::{decode_frame, four_letter_word, FourLetterWord, FrameResult};
use crate::proto::{ErrorCode, OpCode};
use crate::server::standalone::{ConnId, Input};

/// What the server task sends to a connection.
#[derive(Debug)]
pub enum Outbound {
    /// A frame to write.
    Frame(Vec<u8>),
    /// Close after writing what came before.
    Close,
}

/// A connection stops reading requests while its client has more than this many requests without
/// a reply queued (ZooKeeper's `globalOutstandingLimit` default, per connection here) ...
pub const MAX_UNANSWERED: u64 = 1000;
/// ... or while more than this many reply bytes wait to be written because the client does not read
/// them. Together they bound a connection's queued replies (a client that stops reading cannot make
/// the server buffer without limit).
pub const MAX_QUEUED_BYTES: usize = 16 << 20;

/// What a connection's reader and writer share to apply backpressure.
#[derive(Debug, Default)]
struct Backlog {
    /// Reply and notification bytes handed to the writer and not yet written to the socket.
    queued_bytes: AtomicUsize,
    /// Frames handed to the writer (replies and notifications), ever.
    queued_frames: AtomicU64,
    /// The writer stopped (socket closed or failed).
    closed: AtomicBool,
    /// Signalled whenever the writer made progress or stopped.
    progress: Notify,
}

/// The sending side of a connection's outbound queue, held by the server task. It counts what it
/// queues so the connection can stop reading while its client does not read.
#[derive(Clone, Debug)]
pub struct OutboundTx {
    tx: mpsc::UnboundedSender<Outbound>,
    backlog: Arc<Backlog>,
}

impl OutboundTx {
    /// Queues a frame or the close for the connection's writer.
    pub fn send(&self, out: Outbound) -> Result<(), mpsc::error::SendError<Outbound>> {
        if let Outbound::Frame(frame) = &out {
            self.backlog
                .queued_bytes
                .fetch_add(frame.len(), Ordering::AcqRel);
            self.backlog.queued_frames.fetch_add(1, Ordering::AcqRel);
        }
        self.tx.send(out)
    }
}

/// What a connection sends to the server task.
#[derive(Debug)]
pub enum CoreEvent {
    /// A new connection finished its first frame; frames for it go to `tx`.
    Register {
        /// The connection.
        conn: ConnId,
        /// Where the server task sends frames.
        tx: OutboundTx,
        /// The client's address.
        remote: SocketAddr,
    },
    /// An input for the server state machine.
    Input(Input),
    /// A four-letter word to answer with text.
    FourLetter {
        /// The word.
        word: FourLetterWord,
        /// Where the text goes.
        reply: oneshot::Sender<String>,
    },
    /// An AdminServer command (or a metrics scrape) to answer with its JSON fields.
    Admin {
        /// The command.
        command: &'static crate::server::admin::CommandSpec,
        /// The query parameters.
        params: std::collections::BTreeMap<String, String>,
        /// Where the answer goes.
        reply: oneshot::Sender<crate::server::admin::Response>,
    },
}

/// Limits and settings every connection needs.
#[derive(Clone, Debug)]
pub struct ConnectionSettings {
    /// `jute.maxbuffer`: larger frames close the connection.
    pub max_frame_bytes: usize,
    /// Words allowed by `4lw.commands.whitelist`.
    pub four_letter_words: crate::server::fourlw::Whitelist,
    /// How long a connection may stay without a handshake (`zookeeper.nio.sessionlessCnxnTimeout`).
    pub sessionless_timeout: Duration,
    /// `clientTcpKeepAlive`: TCP keepalive on client sockets (`NIOServerCnxn`).
    pub tcp_keep_alive: bool,
}

/// Serves one connection until it closes.
pub async fn serve(
    stream: TcpStream,
    remote: SocketAddr,
    conn: ConnId,
    events: mpsc::Sender<CoreEvent>,
    settings: ConnectionSettings,
) {
    let _ = stream.set_nodelay(true);
    if let Err(err) = super::set_tcp_keepalive(&stream, settings.tcp_keep_alive) {
        tracing::debug!("client {remote}: could not turn on TCP keepalive: {err}");
    }
    let (mut reader, writer) = stream.into_split();
    let mut buf = BytesMut::with_capacity(16 * 1024);

    // The first bytes decide between a four-letter word and a handshake; both must arrive in time.
    let first = tokio::time::timeout(settings.sessionless_timeout, async {
        while buf.len() < 4 {
            match reader.read_buf(&mut buf).await {
                Ok(0) | Err(_) => return false,
                Ok(_) => {}
            }
        }
        true
    })
    .await;
    if first != Ok(true) {
        return;
    }
    let first4 = [buf[0], buf[1], buf[2], buf[3]];
    if let Some(word) = four_letter_word(&first4) {
        answer_four_letter(word, writer, &events, &settings).await;
        return;
    }

    // The handshake frame.
    let connect = match read_frame(&mut reader, &mut buf, settings.max_frame_bytes).await {
        Some(payload) => payload,
        None => return,
    };
    // Like ZooKeeper's processConnectRequest: read the record and the optional readOnly byte, and
    // ignore whatever else the frame holds.
    let request = match ConnectRequest::read(&mut JuteReader::new(&connect)) {
        Ok(r) => r,
        Err(err) => {
            tracing::info!(%remote, "closing connection: bad connect request: {err}");
            return;
        }
    };
    let (tx, rx) = mpsc::unbounded_channel();
    let backlog = Arc::new(Backlog::default());
    let tx = OutboundTx {
        tx,
        backlog: backlog.clone(),
    };
    if events
        .send(CoreEvent::Register { conn, tx, remote })
        .await
        .is_err()
    {
        return;
    }
    let writer_task = tokio::spawn(write_loop(writer, rx, backlog.clone()));
    let _ = events
        .send(CoreEvent::Input(Input::Connect {
            conn,
            remote_ip: remote.ip().to_string(),
            request,
        }))
        .await;

    // Requests forwarded to the server task; each gets one reply frame (notifications only make the
    // count of unanswered requests look smaller, never larger).
    let mut forwarded: u64 = 0;
    loop {
        if !wait_for_room(&backlog, forwarded).await {
            break;
        }
        let Some(payload) = read_frame(&mut reader, &mut buf, settings.max_frame_bytes).await
        else {
            break;
        };
        forwarded += 1;
        let input = match decode_request(&payload) {
            Ok((header, request)) => Input::Request {
                conn,
                xid: header.xid,
                request,
            },
            Err(err) => match bad_request(&payload, &err) {
                Some((xid, ty, code)) => Input::BadRequest {
                    conn,
                    xid,
                    ty,
                    err: code,
                },
                None => {
                    tracing::info!(%remote, "closing connection: undecodable request: {err}");
                    break;
                }
            },
        };
        // ZooKeeper answers a bad body with MARSHALLINGERROR and keeps reading; an opcode it refuses
        // ends the connection.
        let stop = matches!(
            input,
            Input::BadRequest {
                err: ErrorCode::Unimplemented,
                ..
            }
        );
        if events.send(CoreEvent::Input(input)).await.is_err() || stop {
            break;
        }
    }
    let _ = events
        .send(CoreEvent::Input(Input::Disconnected { conn }))
        .await;
    // The server task sends Close (or drops the sender) and the writer finishes the queued frames.
    let _ = tokio::time::timeout(Duration::from_secs(5), writer_task).await;
}

/// The error to answer an undecodable request with, when its header is readable: UNIMPLEMENTED for an
/// opcode ZooKeeper does not accept (Request.isValid), MARSHALLINGERROR for a bad body.
fn bad_request(payload: &[u8], err: &DecodeError) -> Option<(i32, i32, ErrorCode)> {
    let header = RequestHeader::read(&mut JuteReader::new(payload)).ok()?;
    let known = OpCode::from_code(header.ty).is_some_and(|op| op != OpCode::Notification);
    let code = if known {
        ErrorCode::MarshallingError
    } else {
        ErrorCode::Unimplemented
    };
    tracing::debug!("bad request xid {} type {}: {err}", header.xid, header.ty);
    Some((header.xid, header.ty, code))
}

/// Reads one frame's payload; `None` on EOF, IO error, or a length ZooKeeper refuses (then the
/// connection is closed, as ZooKeeper's NIOServerCnxn does).
async fn read_frame(
    reader: &mut tokio::net::tcp::OwnedReadHalf,
    buf: &mut BytesMut,
    max: usize,
) -> Option<Vec<u8>> {
    loop {
        match decode_frame(buf, max) {
            FrameResult::Complete { payload, consumed } => {
                let out = buf[payload].to_vec();
                buf.advance(consumed);
                return Some(out);
            }
            FrameResult::Incomplete { needed } => {
                buf.reserve(needed.min(max + 4));
                match reader.read_buf(buf).await {
                    Ok(0) | Err(_) => return None,
                    Ok(_) => {}
                }
            }
            FrameResult::TooLarge { len, max } => {
                tracing::warn!(
                    "closing connection: frame of {len} bytes exceeds jute.maxbuffer {max}"
                );
                return None;
            }
            FrameResult::Malformed { len } => {
                tracing::warn!("closing connection: negative frame length {len}");
                return None;
            }
        }
    }
}

/// Waits until the connection may read another request: fewer than [`MAX_UNANSWERED`] of the
/// `forwarded` requests lack a queued reply and fewer than [`MAX_QUEUED_BYTES`] wait to be written.
/// Returns false once the writer has stopped.
async fn wait_for_room(backlog: &Backlog, forwarded: u64) -> bool {
    loop {
        // Registered before the checks, so progress made in between is not missed.
        let progress = backlog.progress.notified();
        if backlog.closed.load(Ordering::Acquire) {
            return false;
        }
        let answered = backlog.queued_frames.load(Ordering::Acquire);
        let unanswered = forwarded.saturating_sub(answered);
        if unanswered < MAX_UNANSWERED
            && backlog.queued_bytes.load(Ordering::Acquire) < MAX_QUEUED_BYTES
        {
            return true;
        }
        progress.await;
    }
}

async fn write_loop(
    writer: tokio::net::tcp::OwnedWriteHalf,
    rx: mpsc::UnboundedReceiver<Outbound>,
    backlog: Arc<Backlog>,
) {
    write_frames(writer, rx, &backlog).await;
    backlog.closed.store(true, Ordering::Release);
    backlog.progress.notify_waiters();
}

async fn write_frames(
    writer: tokio::net::tcp::OwnedWriteHalf,
    mut rx: mpsc::UnboundedReceiver<Outbound>,
    backlog: &Backlog,
) {
    let mut writer = BufWriter::with_capacity(64 * 1024, writer);
    while let Some(out) = rx.recv().await {
        let mut close = false;
        match out {
            Outbound::Frame(frame) => {
                if writer.write_all(&frame).await.is_err() {
                    return;
                }
                backlog
                    .queued_bytes
                    .fetch_sub(frame.len(), Ordering::AcqRel);
            }
            Outbound::Close => close = true,
        }
        // Write everything already queued before flushing: one syscall for a burst of replies.
        while !close {
            match rx.try_recv() {
                Ok(Outbound::Frame(frame)) => {
                    if writer.write_all(&frame).await.is_err() {
                        return;
                    }
                    backlog
                        .queued_bytes
                        .fetch_sub(frame.len(), Ordering::AcqRel);
                }
                Ok(Outbound::Close) => close = true,
                Err(_) => break,
            }
        }
        if writer.flush().await.is_err() {
            return;
        }
        backlog.progress.notify_waiters();
        if close {
            let _ = writer.shutdown().await;
            return;
        }
    }
    let _ = writer.flush().await;
    let _ = writer.shutdown().await;
}

async fn answer_four_letter(
    word: FourLetterWord,
    mut writer: tokio::net::tcp::OwnedWriteHalf,
    events: &mpsc::Sender<CoreEvent>,
    settings: &ConnectionSettings,
) {
    let name = word.as_str();
    let text = if word == FourLetterWord::TelnetClose {
        String::new()
    } else if !settings.four_letter_words.allows(name) {
        crate::server::fourlw::not_whitelisted(name)
    } else if word == FourLetterWord::Ruok {
        // ruok is answered even when the server is busy or not serving.
        "imok".to_string()
    } else {
        let (reply, rx) = oneshot::channel();
        if events
            .send(CoreEvent::FourLetter { word, reply })
            .await
            .is_err()
        {
            return;
        }
        rx.await.unwrap_or_default()
    };
    let _ = writer.write_all(text.as_bytes()).await;
    let _ = writer.shutdown().await;
}
