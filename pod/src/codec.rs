//! The wire and WAL encoding of every consensus message: CBOR (ciborium) over small records of our own, each
//! malachite type converted field by field. Decoding is strict about lengths (keys 32 bytes, signatures 64,
//! rounds in range) and never panics on untrusted bytes.

use std::ops::RangeInclusive;

use bytes::Bytes;
use malachitebft_app_channel::app::consensus::{LivenessMsg, ProposedValue, SignedConsensusMsg};
use malachitebft_app_channel::app::streaming::{StreamContent, StreamId, StreamMessage};
use malachitebft_app_channel::app::types::codec::{Codec, HasEncodedLen};
use malachitebft_app_channel::app::types::core::{
    CommitCertificate, CommitSignature, ExtendedCommitCertificate, ExtendedCommitSignature, NilOrVal, PolkaCertificate,
    PolkaSignature, Round, RoundCertificate, RoundCertificateType, RoundSignature, SignedMessage, ValidatorProof,
    Validity, VoteType,
};
use malachitebft_app_channel::app::types::sync::{RawDecidedValue, Request, Response, Status};
use malachitebft_app_channel::app::types::PeerId;
use malachitebft_sync::{ValueRequest, ValueResponse};
use serde::{de::DeserializeOwned, Deserialize, Serialize};
use serde_bytes::ByteBuf;

use super::context::{Address, BlockId, Height, PodContext, Proposal, ProposalPart, Signature, Vote};

/// Largest message decoded.
pub const MAX_MESSAGE: usize = 64 << 20;

/// A message that does not decode.
#[derive(Debug, thiserror::Error)]
#[error("consensus codec: {0}")]
pub struct CodecError(pub String);

fn bad(what: impl Into<String>) -> CodecError {
    CodecError(what.into())
}

fn to_cbor<T: Serialize>(v: &T) -> Bytes {
    let mut out = Vec::new();
    ciborium::into_writer(v, &mut out).expect("writing CBOR to a Vec cannot fail");
    Bytes::from(out)
}

fn from_cbor<T: DeserializeOwned>(b: &[u8]) -> Result<T, CodecError> {
    if b.len() > MAX_MESSAGE {
        return Err(bad(format!("{} bytes is over the {MAX_MESSAGE}-byte limit", b.len())));
    }
    let mut rest = b;
    let v = ciborium::from_reader(&mut rest).map_err(|e| bad(format!("not a valid message: {e}")))?;
    if !rest.is_empty() {
        return Err(bad(format!("{} trailing bytes", rest.len())));
    }
    Ok(v)
}

fn arr32(b: &ByteBuf, what: &str) -> Result<[u8; 32], CodecError> {
    b.as_slice().try_into().map_err(|_| bad(format!("{what}: {} bytes, not 32", b.len())))
}

fn sig(b: &ByteBuf) -> Result<Signature, CodecError> {
    b.as_slice().try_into().map(Signature).map_err(|_| bad(format!("a signature of {} bytes", b.len())))
}

fn buf(b: &[u8]) -> ByteBuf {
    ByteBuf::from(b.to_vec())
}

fn round(r: i64) -> Result<Round, CodecError> {
    match r {
        -1 => Ok(Round::Nil),
        0..=0xffff_ffff => Ok(Round::new(r as u32)),
        _ => Err(bad(format!("round {r}"))),
    }
}

fn addr(b: &ByteBuf) -> Result<Address, CodecError> {
    arr32(b, "address").map(Address)
}

fn id(b: &ByteBuf) -> Result<BlockId, CodecError> {
    arr32(b, "block id").map(|h| BlockId(sigil_ledger::Hash(h)))
}

#[derive(Serialize, Deserialize)]
struct WVote {
    t: u8,
    h: u64,
    r: i64,
    v: Option<ByteBuf>,
    a: ByteBuf,
}

impl WVote {
    fn from(v: &Vote) -> WVote {
        WVote {
            t: match v.vote_type {
                VoteType::Prevote => 1,
                VoteType::Precommit => 2,
            },
            h: v.height.0,
            r: v.round.as_i64(),
            v: match &v.value {
                NilOrVal::Nil => None,
                NilOrVal::Val(id) => Some(buf(&id.0 .0)),
            },
            a: buf(&v.validator.0),
        }
    }
    fn into(self, ext: Option<WSigned>) -> Result<Vote, CodecError> {
        Ok(Vote {
            vote_type: match self.t {
                1 => VoteType::Prevote,
                2 => VoteType::Precommit,
                t => return Err(bad(format!("vote type {t}"))),
            },
            height: Height(self.h),
            round: round(self.r)?,
            value: match &self.v {
                None => NilOrVal::Nil,
                Some(b) => NilOrVal::Val(id(b)?),
            },
            validator: addr(&self.a)?,
            extension: ext.map(WSigned::into).transpose()?,
        })
    }
}

/// A signed extension: its bytes and the signature.
#[derive(Serialize, Deserialize)]
struct WSigned {
    m: ByteBuf,
    s: ByteBuf,
}

impl WSigned {
    fn from(e: &SignedMessage<PodContext, Bytes>) -> WSigned {
        WSigned { m: buf(&e.message), s: buf(&e.signature.0) }
    }
    fn into(self) -> Result<SignedMessage<PodContext, Bytes>, CodecError> {
        Ok(SignedMessage::new(Bytes::from(self.m.into_vec()), sig(&self.s)?))
    }
}

#[derive(Serialize, Deserialize)]
struct WSignedVote {
    vote: WVote,
    ext: Option<WSigned>,
    s: ByteBuf,
}

impl WSignedVote {
    fn from(v: &SignedMessage<PodContext, Vote>) -> WSignedVote {
        WSignedVote {
            vote: WVote::from(&v.message),
            ext: v.message.extension.as_ref().map(WSigned::from),
            s: buf(&v.signature.0),
        }
    }
    fn into(self) -> Result<SignedMessage<PodContext, Vote>, CodecError> {
        let s = sig(&self.s)?;
        Ok(SignedMessage::new(self.vote.into(self.ext)?, s))
    }
}

#[derive(Serialize, Deserialize)]
struct WProposal {
    h: u64,
    r: i64,
    pol: i64,
    v: ByteBuf,
    p: ByteBuf,
    s: ByteBuf,
}

#[derive(Serialize, Deserialize)]
enum WConsensus {
    Vote(WSignedVote),
    Proposal(WProposal),
}

#[derive(Serialize, Deserialize)]
enum WPart {
    Init { h: u64, r: i64, pol: i64, p: ByteBuf },
    Data(ByteBuf),
    Fin(ByteBuf),
    Wake { h: u64, a: ByteBuf, s: ByteBuf },
    Reinstate { e: ByteBuf, s: ByteBuf },
}

impl WPart {
    fn from(p: &ProposalPart) -> WPart {
        match p {
            ProposalPart::Init { height, round, pol_round, proposer } => {
                WPart::Init { h: height.0, r: round.as_i64(), pol: pol_round.as_i64(), p: buf(&proposer.0) }
            }
            ProposalPart::Data(d) => WPart::Data(buf(d)),
            ProposalPart::Fin { signature } => WPart::Fin(buf(&signature.0)),
            ProposalPart::Wake { height, from, signature } => {
                WPart::Wake { h: height.0, a: buf(&from.0), s: buf(&signature.0) }
            }
            ProposalPart::Reinstate { entry, signature } => WPart::Reinstate { e: buf(entry), s: buf(&signature.0) },
        }
    }
    fn into(self) -> Result<ProposalPart, CodecError> {
        Ok(match self {
            WPart::Init { h, r, pol, p } => {
                ProposalPart::Init { height: Height(h), round: round(r)?, pol_round: round(pol)?, proposer: addr(&p)? }
            }
            WPart::Data(d) => ProposalPart::Data(Bytes::from(d.into_vec())),
            WPart::Fin(s) => ProposalPart::Fin { signature: sig(&s)? },
            WPart::Wake { h, a, s } => ProposalPart::Wake { height: Height(h), from: addr(&a)?, signature: sig(&s)? },
            WPart::Reinstate { e, s } => {
                ProposalPart::Reinstate { entry: Bytes::from(e.into_vec()), signature: sig(&s)? }
            }
        })
    }
}

#[derive(Serialize, Deserialize)]
struct WStream {
    id: ByteBuf,
    seq: u64,
    /// `None` closes the stream.
    part: Option<WPart>,
}

#[derive(Serialize, Deserialize)]
struct WAddrSig {
    a: ByteBuf,
    s: ByteBuf,
}

#[derive(Serialize, Deserialize)]
struct WPolka {
    h: u64,
    r: i64,
    v: ByteBuf,
    sigs: Vec<WAddrSig>,
}

impl WPolka {
    fn from(c: &PolkaCertificate<PodContext>) -> WPolka {
        WPolka {
            h: c.height.0,
            r: c.round.as_i64(),
            v: buf(&c.value_id.0 .0),
            sigs: c
                .polka_signatures
                .iter()
                .map(|s| WAddrSig { a: buf(&s.address.0), s: buf(&s.signature.0) })
                .collect(),
        }
    }
    fn into(self) -> Result<PolkaCertificate<PodContext>, CodecError> {
        Ok(PolkaCertificate {
            height: Height(self.h),
            round: round(self.r)?,
            value_id: id(&self.v)?,
            polka_signatures: self
                .sigs
                .iter()
                .map(|s| Ok(PolkaSignature::new(addr(&s.a)?, sig(&s.s)?)))
                .collect::<Result<_, CodecError>>()?,
        })
    }
}

#[derive(Serialize, Deserialize)]
struct WRoundSig {
    t: u8,
    v: Option<ByteBuf>,
    a: ByteBuf,
    s: ByteBuf,
}

#[derive(Serialize, Deserialize)]
struct WRoundCert {
    h: u64,
    r: i64,
    skip: bool,
    sigs: Vec<WRoundSig>,
}

#[derive(Serialize, Deserialize)]
enum WLiveness {
    Vote(WSignedVote),
    Polka(WPolka),
    Skip(WRoundCert),
}

#[derive(Serialize, Deserialize)]
struct WProof {
    pk: ByteBuf,
    peer: ByteBuf,
    s: ByteBuf,
}

#[derive(Serialize, Deserialize)]
struct WStatus {
    peer: ByteBuf,
    tip: u64,
    min: u64,
}

#[derive(Serialize, Deserialize)]
struct WRequest {
    from: u64,
    to: u64,
}

#[derive(Serialize, Deserialize)]
struct WCommitSig {
    a: ByteBuf,
    s: ByteBuf,
    ext: Option<WSigned>,
}

/// A commit certificate (with the precommits' extensions), as sent by sync and kept in the store.
#[derive(Serialize, Deserialize)]
struct WCert {
    h: u64,
    r: i64,
    v: ByteBuf,
    sigs: Vec<WCommitSig>,
}

impl WCert {
    fn from(c: &ExtendedCommitCertificate<PodContext>) -> WCert {
        WCert {
            h: c.height.0,
            r: c.round.as_i64(),
            v: buf(&c.value_id.0 .0),
            sigs: c
                .commit_signatures
                .iter()
                .map(|s| WCommitSig {
                    a: buf(&s.address.0),
                    s: buf(&s.signature.0),
                    ext: s.extension.as_ref().map(WSigned::from),
                })
                .collect(),
        }
    }
    fn into(self) -> Result<ExtendedCommitCertificate<PodContext>, CodecError> {
        Ok(ExtendedCommitCertificate {
            height: Height(self.h),
            round: round(self.r)?,
            value_id: id(&self.v)?,
            commit_signatures: self
                .sigs
                .into_iter()
                .map(|s| {
                    Ok(ExtendedCommitSignature::new(addr(&s.a)?, sig(&s.s)?, s.ext.map(WSigned::into).transpose()?))
                })
                .collect::<Result<_, CodecError>>()?,
        })
    }
}

#[derive(Serialize, Deserialize)]
struct WDecided {
    value: ByteBuf,
    cert: WCert,
}

#[derive(Serialize, Deserialize)]
struct WResponse {
    start: u64,
    values: Vec<WDecided>,
}

#[derive(Serialize, Deserialize)]
struct WProposed {
    h: u64,
    r: i64,
    vr: i64,
    p: ByteBuf,
    v: ByteBuf,
    valid: bool,
}

/// The codec (stateless).
#[derive(Copy, Clone, Debug, Default)]
pub struct PodCodec;

macro_rules! cbor_codec {
    ($t:ty, $w:ty, |$e:ident| $enc:expr, |$d:ident| $dec:expr) => {
        impl Codec<$t> for PodCodec {
            type Error = CodecError;
            fn decode(&self, bytes: Bytes) -> Result<$t, CodecError> {
                let $d: $w = from_cbor(&bytes)?;
                $dec
            }
            fn encode(&self, $e: &$t) -> Result<Bytes, CodecError> {
                Ok(to_cbor::<$w>(&$enc))
            }
        }
    };
}

cbor_codec!(ProposalPart, WPart, |p| WPart::from(p), |w| w.into());

cbor_codec!(
    SignedConsensusMsg<PodContext>,
    WConsensus,
    |m| match m {
        SignedConsensusMsg::Vote(v) => WConsensus::Vote(WSignedVote::from(v)),
        SignedConsensusMsg::Proposal(p) => WConsensus::Proposal(WProposal {
            h: p.height.0,
            r: p.round.as_i64(),
            pol: p.pol_round.as_i64(),
            v: buf(&p.value.0 .0),
            p: buf(&p.proposer.0),
            s: buf(&p.signature.0),
        }),
    },
    |w| match w {
        WConsensus::Vote(v) => Ok(SignedConsensusMsg::Vote(v.into()?)),
        WConsensus::Proposal(p) => Ok(SignedConsensusMsg::Proposal(SignedMessage::new(
            Proposal {
                height: Height(p.h),
                round: round(p.r)?,
                value: id(&p.v)?,
                pol_round: round(p.pol)?,
                proposer: addr(&p.p)?
            },
            sig(&p.s)?,
        ))),
    }
);

cbor_codec!(
    StreamMessage<ProposalPart>,
    WStream,
    |m| WStream {
        id: buf(&m.stream_id.to_bytes()),
        seq: m.sequence,
        part: match &m.content {
            StreamContent::Data(p) => Some(WPart::from(p)),
            StreamContent::Fin => None,
        },
    },
    |w| Ok(StreamMessage::new(
        StreamId::new(Bytes::from(w.id.into_vec())),
        w.seq,
        match w.part {
            Some(p) => StreamContent::Data(p.into()?),
            None => StreamContent::Fin,
        },
    ))
);

cbor_codec!(
    LivenessMsg<PodContext>,
    WLiveness,
    |m| match m {
        LivenessMsg::Vote(v) => WLiveness::Vote(WSignedVote::from(v)),
        LivenessMsg::PolkaCertificate(c) => WLiveness::Polka(WPolka::from(c)),
        LivenessMsg::SkipRoundCertificate(c) => WLiveness::Skip(WRoundCert {
            h: c.height.0,
            r: c.round.as_i64(),
            skip: matches!(c.cert_type, RoundCertificateType::Skip),
            sigs: c
                .round_signatures
                .iter()
                .map(|s| WRoundSig {
                    t: match s.vote_type {
                        VoteType::Prevote => 1,
                        VoteType::Precommit => 2,
                    },
                    v: match &s.value_id {
                        NilOrVal::Nil => None,
                        NilOrVal::Val(id) => Some(buf(&id.0 .0)),
                    },
                    a: buf(&s.address.0),
                    s: buf(&s.signature.0),
                })
                .collect(),
        }),
    },
    |w| match w {
        WLiveness::Vote(v) => Ok(LivenessMsg::Vote(v.into()?)),
        WLiveness::Polka(p) => Ok(LivenessMsg::PolkaCertificate(p.into()?)),
        WLiveness::Skip(c) => Ok(LivenessMsg::SkipRoundCertificate(RoundCertificate {
            height: Height(c.h),
            round: round(c.r)?,
            cert_type: if c.skip { RoundCertificateType::Skip } else { RoundCertificateType::Precommit },
            round_signatures: c
                .sigs
                .iter()
                .map(|s| {
                    Ok(RoundSignature::new(
                        match s.t {
                            1 => VoteType::Prevote,
                            2 => VoteType::Precommit,
                            t => return Err(bad(format!("vote type {t}"))),
                        },
                        match &s.v {
                            None => NilOrVal::Nil,
                            Some(b) => NilOrVal::Val(id(b)?),
                        },
                        addr(&s.a)?,
                        sig(&s.s)?,
                    ))
                })
                .collect::<Result<_, CodecError>>()?,
        })),
    }
);

cbor_codec!(
    ValidatorProof<PodContext>,
    WProof,
    |p| WProof { pk: buf(&p.public_key), peer: buf(&p.peer_id), s: buf(&p.signature.0) },
    |w| Ok(ValidatorProof::new(w.pk.into_vec(), w.peer.into_vec(), sig(&w.s)?))
);

cbor_codec!(
    Status<PodContext>,
    WStatus,
    |s| WStatus { peer: buf(&s.peer_id.to_bytes()), tip: s.tip_height.0, min: s.history_min_height.0 },
    |w| Ok(Status {
        peer_id: PeerId::from_bytes(&w.peer).map_err(|e| bad(format!("peer id: {e}")))?,
        tip_height: Height(w.tip),
        history_min_height: Height(w.min),
    })
);

cbor_codec!(
    Request<PodContext>,
    WRequest,
    |r| match r {
        Request::ValueRequest(v) => WRequest { from: v.range.start().0, to: v.range.end().0 },
    },
    |w| Ok(Request::ValueRequest(ValueRequest::new(RangeInclusive::new(Height(w.from), Height(w.to)))))
);

fn response_wire(r: &Response<PodContext>) -> WResponse {
    match r {
        Response::ValueResponse(v) => WResponse {
            start: v.start_height.0,
            values: v
                .values
                .iter()
                .map(|d| WDecided { value: buf(&d.value_bytes), cert: WCert::from(&d.certificate) })
                .collect(),
        },
    }
}

cbor_codec!(Response<PodContext>, WResponse, |r| response_wire(r), |w| Ok(Response::ValueResponse(
    ValueResponse::new(
        Height(w.start),
        w.values
            .into_iter()
            .map(|d| Ok(RawDecidedValue::new(Bytes::from(d.value.into_vec()), d.cert.into()?)))
            .collect::<Result<_, CodecError>>()?,
    )
)));

impl HasEncodedLen<Response<PodContext>> for PodCodec {
    fn encoded_len(&self, msg: &Response<PodContext>) -> Result<usize, CodecError> {
        Ok(to_cbor(&response_wire(msg)).len())
    }
}

cbor_codec!(
    ProposedValue<PodContext>,
    WProposed,
    |p| WProposed {
        h: p.height.0,
        r: p.round.as_i64(),
        vr: p.valid_round.as_i64(),
        p: buf(&p.proposer.0),
        v: buf(&p.value.0 .0),
        valid: p.validity.is_valid(),
    },
    |w| Ok(ProposedValue {
        height: Height(w.h),
        round: round(w.r)?,
        valid_round: round(w.vr)?,
        proposer: addr(&w.p)?,
        value: id(&w.v)?,
        validity: Validity::from_bool(w.valid),
    })
);

cbor_codec!(PolkaCertificate<PodContext>, WPolka, |c| WPolka::from(c), |w| w.into());

cbor_codec!(ExtendedCommitCertificate<PodContext>, WCert, |c| WCert::from(c), |w| w.into());

/// A commit certificate without extensions, from an extended one (what `Decided` hands the app is the plain
/// certificate; the store keeps the extended one so sync can serve it).
pub fn plain_certificate(c: &ExtendedCommitCertificate<PodContext>) -> CommitCertificate<PodContext> {
    CommitCertificate {
        height: c.height,
        round: c.round,
        value_id: c.value_id,
        commit_signatures: c.commit_signatures.iter().map(|s| CommitSignature::new(s.address, s.signature)).collect(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::block::{Block, Item};
    use malachitebft_app_channel::app::types::core::VoteExtensions;

    fn vote(t: VoteType, value: NilOrVal<BlockId>) -> Vote {
        Vote {
            vote_type: t,
            height: Height(7),
            round: Round::new(2),
            value,
            validator: Address([3; 32]),
            extension: None,
        }
    }

    fn samples() -> Vec<(&'static str, Bytes)> {
        let id = BlockId(sigil_ledger::Hash([9; 32]));
        let s = Signature([5; 64]);
        let signed_vote = SignedMessage::new(vote(VoteType::Precommit, NilOrVal::Val(id)), s);
        let ext_cert = ExtendedCommitCertificate::from_commit_certificate_and_extensions(
            CommitCertificate {
                height: Height(7),
                round: Round::new(1),
                value_id: id,
                commit_signatures: vec![CommitSignature::new(Address([3; 32]), s)],
            },
            VoteExtensions::new(vec![(Address([3; 32]), SignedMessage::new(Bytes::from_static(&[1; 64]), s))]),
        );
        let block = Block {
            pod: "p".into(),
            height: 7,
            proposer: ByteBuf::from(vec![3; 32]),
            time_ms: 1,
            parent_size: 1,
            parent_root: sigil_ledger::Hash([1; 32]),
            entries: vec![Item {
                entry: ByteBuf::from(vec![1, 2, 3]),
                signature: ByteBuf::new(),
                request: ByteBuf::from(vec![4]),
                write_set: ByteBuf::new(),
                code: ByteBuf::new(),
            }],
        };
        let c = PodCodec;
        vec![
            ("vote", c.encode(&SignedConsensusMsg::Vote(signed_vote.clone())).unwrap()),
            (
                "proposal",
                c.encode(&SignedConsensusMsg::<PodContext>::Proposal(SignedMessage::new(
                    Proposal {
                        height: Height(7),
                        round: Round::new(0),
                        value: id,
                        pol_round: Round::Nil,
                        proposer: Address([3; 32]),
                    },
                    s,
                )))
                .unwrap(),
            ),
            ("liveness", c.encode(&LivenessMsg::Vote(signed_vote)).unwrap()),
            ("part", c.encode(&ProposalPart::Fin { signature: s }).unwrap()),
            (
                "wake",
                c.encode(&ProposalPart::Wake { height: Height(7), from: Address([3; 32]), signature: s }).unwrap(),
            ),
            (
                "stream",
                c.encode(&StreamMessage::new(
                    StreamId::new(Bytes::from_static(b"s")),
                    1,
                    StreamContent::Data(ProposalPart::Data(Bytes::from_static(b"d"))),
                ))
                .unwrap(),
            ),
            ("cert", c.encode(&ext_cert).unwrap()),
            (
                "response",
                c.encode(&Response::ValueResponse(ValueResponse::new(
                    Height(7),
                    vec![RawDecidedValue::new(Bytes::from(block.encode()), ext_cert)],
                )))
                .unwrap(),
            ),
            ("block", Bytes::from(block.encode())),
        ]
    }

    fn decode_all(b: &Bytes) {
        let c = PodCodec;
        let _ = Codec::<SignedConsensusMsg<PodContext>>::decode(&c, b.clone());
        let _ = Codec::<LivenessMsg<PodContext>>::decode(&c, b.clone());
        let _ = Codec::<ProposalPart>::decode(&c, b.clone());
        let _ = Codec::<StreamMessage<ProposalPart>>::decode(&c, b.clone());
        let _ = Codec::<ExtendedCommitCertificate<PodContext>>::decode(&c, b.clone());
        let _ = Codec::<Response<PodContext>>::decode(&c, b.clone());
        let _ = Codec::<Request<PodContext>>::decode(&c, b.clone());
        let _ = Codec::<Status<PodContext>>::decode(&c, b.clone());
        let _ = Codec::<ValidatorProof<PodContext>>::decode(&c, b.clone());
        let _ = Codec::<ProposedValue<PodContext>>::decode(&c, b.clone());
        let _ = Codec::<PolkaCertificate<PodContext>>::decode(&c, b.clone());
        let _ = Block::decode(b);
    }

    #[test]
    fn messages_round_trip() {
        let c = PodCodec;
        for (t, value) in [
            (VoteType::Prevote, NilOrVal::Nil),
            (VoteType::Precommit, NilOrVal::Val(BlockId(sigil_ledger::Hash([4; 32])))),
        ] {
            let m = SignedConsensusMsg::Vote(SignedMessage::new(vote(t, value), Signature([8; 64])));
            assert_eq!(Codec::<SignedConsensusMsg<PodContext>>::decode(&c, c.encode(&m).unwrap()).unwrap(), m);
        }
        let wake = ProposalPart::Wake { height: Height(9), from: Address([3; 32]), signature: Signature([8; 64]) };
        assert_eq!(Codec::<ProposalPart>::decode(&c, c.encode(&wake).unwrap()).unwrap(), wake);
        let bytes = samples().into_iter().find(|(n, _)| *n == "cert").unwrap().1;
        let cert: ExtendedCommitCertificate<PodContext> = c.decode(bytes.clone()).unwrap();
        assert_eq!(c.encode(&cert).unwrap(), bytes);
    }

    #[test]
    fn mutated_and_random_bytes_never_panic_a_decoder() {
        let mut x: u64 = 0x9e37_79b9_7f4a_7c15;
        let mut next = move || {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x
        };
        for (_, good) in samples() {
            decode_all(&good);
            for _ in 0..400 {
                let mut b = good.to_vec();
                match next() % 4 {
                    0 => {
                        let i = next() as usize % b.len();
                        b[i] ^= 1 << (next() % 8);
                    }
                    1 => b.truncate(next() as usize % b.len()),
                    2 => {
                        let i = next() as usize % b.len();
                        b[i] = next() as u8;
                    }
                    _ => b.extend((0..next() % 16).map(|_| next() as u8)),
                }
                decode_all(&Bytes::from(b));
            }
        }
        for _ in 0..2000 {
            let len = (next() % 96) as usize;
            decode_all(&Bytes::from((0..len).map(|_| next() as u8).collect::<Vec<u8>>()));
        }
    }

    #[test]
    fn wrong_lengths_and_rounds_are_refused() {
        let c = PodCodec;
        let mut w = WVote { t: 1, h: 1, r: 0, v: Some(ByteBuf::from(vec![1; 31])), a: ByteBuf::from(vec![2; 32]) };
        assert!(w.into(None).is_err(), "a 31-byte block id");
        w = WVote { t: 3, h: 1, r: 0, v: None, a: ByteBuf::from(vec![2; 32]) };
        assert!(w.into(None).is_err(), "vote type 3");
        w = WVote { t: 1, h: 1, r: -2, v: None, a: ByteBuf::from(vec![2; 32]) };
        assert!(w.into(None).is_err(), "round -2");
        let p = to_cbor(&WPart::Fin(ByteBuf::from(vec![0; 63])));
        assert!(Codec::<ProposalPart>::decode(&c, p).is_err(), "a 63-byte signature");
        let p = to_cbor(&WPart::Wake { h: 1, a: ByteBuf::from(vec![2; 31]), s: ByteBuf::from(vec![0; 64]) });
        assert!(Codec::<ProposalPart>::decode(&c, p).is_err(), "a 31-byte waker");
        let mut trailing = c.encode(&ProposalPart::Data(Bytes::from_static(b"x"))).unwrap().to_vec();
        trailing.push(0);
        assert!(Codec::<ProposalPart>::decode(&c, Bytes::from(trailing)).is_err(), "trailing bytes");
    }
}
