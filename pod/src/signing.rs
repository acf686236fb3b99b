//! Consensus signatures: Ed25519 (ring) over domain-separated byte strings, one domain per message kind, so a
//! signature over one kind can never be replayed as another (and none is a ledger checkpoint signature, whose
//! signed text starts with the pod id and never with these prefixes' NUL byte).

use std::collections::BTreeSet;
use std::sync::{Arc, RwLock};

use async_trait::async_trait;
use malachitebft_app_channel::app::types::core::{
    NilOrVal, Round, SignedExtension, SignedMessage, ValidatorProof, VoteExtensionScope, VoteType,
};
use malachitebft_app_channel::{Signer, Verifier};
use malachitebft_signing::{Error as SigningError, VerificationResult};
use ring::signature::{Ed25519KeyPair, KeyPair};

use super::context::{Address, BlockId, Height, PodContext, Proposal, PublicKey, Signature, Vote};
pub use crate::types::{receipt_bytes, verify};

const VOTE: &[u8] = b"sigil/consensus/vote\0";
const PROPOSAL: &[u8] = b"sigil/consensus/proposal\0";
const EXTENSION: &[u8] = b"sigil/consensus/vote-extension\0";
const VALIDATOR_PROOF: &[u8] = b"sigil/consensus/validator-proof\0";
const BLOCK: &[u8] = b"sigil/consensus/block\0";
const WAKE: &[u8] = b"sigil/consensus/wake\0";

fn round_bytes(r: Round) -> [u8; 8] {
    r.as_i64().to_be_bytes()
}

/// What a vote's signature covers (not its extension, which is signed on its own).
pub fn vote_bytes(v: &Vote) -> Vec<u8> {
    let mut b = VOTE.to_vec();
    b.push(match v.vote_type {
        VoteType::Prevote => 1,
        VoteType::Precommit => 2,
    });
    b.extend_from_slice(&v.height.0.to_be_bytes());
    b.extend_from_slice(&round_bytes(v.round));
    match &v.value {
        NilOrVal::Nil => b.push(0),
        NilOrVal::Val(id) => {
            b.push(1);
            b.extend_from_slice(&id.0 .0);
        }
    }
    b.extend_from_slice(&v.validator.0);
    b
}

/// What a proposal's signature covers.
pub fn proposal_bytes(p: &Proposal) -> Vec<u8> {
    let mut b = PROPOSAL.to_vec();
    b.extend_from_slice(&p.height.0.to_be_bytes());
    b.extend_from_slice(&round_bytes(p.round));
    b.extend_from_slice(&round_bytes(p.pol_round));
    b.extend_from_slice(&p.value.0 .0);
    b.extend_from_slice(&p.proposer.0);
    b
}

/// What a vote extension's signature covers: its scope and its bytes.
pub fn extension_bytes(scope: &VoteExtensionScope<PodContext>, ext: &[u8]) -> Vec<u8> {
    let mut b = EXTENSION.to_vec();
    b.extend_from_slice(&scope.height.0.to_be_bytes());
    b.extend_from_slice(&round_bytes(scope.round));
    b.extend_from_slice(&scope.value_id.0 .0);
    b.extend_from_slice(&scope.validator_address.0);
    b.extend_from_slice(&(ext.len() as u32).to_be_bytes());
    b.extend_from_slice(ext);
    b
}

/// What the proposer signs to close a proposal stream: the block streamed for (height, round).
pub fn block_bytes(height: Height, round: Round, id: &BlockId, proposer: &Address) -> Vec<u8> {
    let mut b = BLOCK.to_vec();
    b.extend_from_slice(&height.0.to_be_bytes());
    b.extend_from_slice(&round_bytes(round));
    b.extend_from_slice(&id.0 .0);
    b.extend_from_slice(&proposer.0);
    b
}

/// What a validator signs to ask the pod to start `height` (it has entries to commit).
pub fn wake_bytes(height: Height, from: &Address) -> Vec<u8> {
    [WAKE, &height.0.to_be_bytes(), &from.0].concat()
}

fn validator_proof_bytes(public_key: &[u8], peer_id: &[u8]) -> Vec<u8> {
    [VALIDATOR_PROOF, &ValidatorProof::<PodContext>::signing_bytes(public_key, peer_id)].concat()
}

/// The libp2p peer id of an Ed25519 key (the node's network identity is its ledger key).
pub fn peer_id_of(key: &[u8; 32]) -> Option<libp2p_identity::PeerId> {
    let pk = libp2p_identity::ed25519::PublicKey::try_from_bytes(key).ok()?;
    Some(libp2p_identity::PublicKey::from(pk).to_peer_id())
}

/// A node's signing key.
pub struct PodSigner {
    key: Ed25519KeyPair,
}

impl PodSigner {
    /// From the node's 32-byte identity seed.
    pub fn new(seed: &[u8; 32]) -> PodSigner {
        PodSigner { key: Ed25519KeyPair::from_seed_unchecked(seed).expect("any 32 bytes are an Ed25519 seed") }
    }

    /// The public key.
    pub fn public_key(&self) -> PublicKey {
        PublicKey(self.key.public_key().as_ref().try_into().expect("32 bytes"))
    }

    /// Signs raw bytes.
    pub fn sign(&self, msg: &[u8]) -> Signature {
        Signature(self.key.sign(msg).as_ref().try_into().expect("64 bytes"))
    }
}

#[async_trait]
impl Signer<PodContext> for PodSigner {
    async fn sign_vote(&self, vote: Vote) -> Result<SignedMessage<PodContext, Vote>, SigningError> {
        let sig = self.sign(&vote_bytes(&vote));
        Ok(SignedMessage::new(vote, sig))
    }
    async fn sign_proposal(&self, proposal: Proposal) -> Result<SignedMessage<PodContext, Proposal>, SigningError> {
        let sig = self.sign(&proposal_bytes(&proposal));
        Ok(SignedMessage::new(proposal, sig))
    }
    async fn sign_vote_extension(
        &self,
        scope: VoteExtensionScope<PodContext>,
        extension: bytes::Bytes,
    ) -> Result<SignedExtension<PodContext>, SigningError> {
        let sig = self.sign(&extension_bytes(&scope, &extension));
        Ok(SignedMessage::new(extension, sig))
    }
    async fn sign_validator_proof(
        &self,
        public_key: Vec<u8>,
        peer_id: Vec<u8>,
    ) -> Result<ValidatorProof<PodContext>, SigningError> {
        let sig = self.sign(&validator_proof_bytes(&public_key, &peer_id));
        Ok(ValidatorProof::new(public_key, peer_id, sig))
    }
}

/// Keys whose validator proofs are accepted: the pod's attested, admitted nodes. Shared with the app, which
/// changes it as nodes are admitted and removed.
#[derive(Clone, Default)]
pub struct Admitted(Arc<RwLock<BTreeSet<[u8; 32]>>>);

impl Admitted {
    /// Replaces the set.
    pub fn set(&self, keys: impl IntoIterator<Item = [u8; 32]>) {
        *self.0.write().expect("not poisoned") = keys.into_iter().collect();
    }
    /// Whether `key` is admitted.
    pub fn contains(&self, key: &[u8; 32]) -> bool {
        self.0.read().expect("not poisoned").contains(key)
    }
}

/// Checks consensus signatures, and that a peer claiming to be a validator is an admitted node whose network
/// identity is its ledger key.
#[derive(Clone)]
pub struct PodVerifier {
    /// The admitted keys.
    pub admitted: Admitted,
}

#[async_trait]
impl Verifier<PodContext> for PodVerifier {
    async fn verify_signed_vote(
        &self,
        vote: &Vote,
        signature: &Signature,
        public_key: &PublicKey,
    ) -> Result<VerificationResult, SigningError> {
        Ok(VerificationResult::from_bool(verify(public_key, &vote_bytes(vote), signature)))
    }
    async fn verify_signed_proposal(
        &self,
        proposal: &Proposal,
        signature: &Signature,
        public_key: &PublicKey,
    ) -> Result<VerificationResult, SigningError> {
        Ok(VerificationResult::from_bool(verify(public_key, &proposal_bytes(proposal), signature)))
    }
    async fn verify_signed_vote_extension(
        &self,
        scope: &VoteExtensionScope<PodContext>,
        extension: &bytes::Bytes,
        signature: &Signature,
        public_key: &PublicKey,
    ) -> Result<VerificationResult, SigningError> {
        Ok(VerificationResult::from_bool(verify(public_key, &extension_bytes(scope, extension), signature)))
    }
    async fn verify_validator_proof(
        &self,
        proof: &ValidatorProof<PodContext>,
    ) -> Result<VerificationResult, SigningError> {
        let Ok(key) = <[u8; 32]>::try_from(proof.public_key.as_slice()) else {
            return Ok(VerificationResult::Invalid);
        };
        let same_identity = peer_id_of(&key).map(|p| p.to_bytes()) == Some(proof.peer_id.clone());
        let signed =
            verify(&PublicKey(key), &validator_proof_bytes(&proof.public_key, &proof.peer_id), &proof.signature);
        let admitted = self.admitted.contains(&key);
        if !(same_identity && signed && admitted) {
            tracing::warn!(
                key = %hex::encode(key),
                same_identity,
                signed,
                admitted,
                "refusing a validator proof: the peer is not an admitted node speaking with its own key"
            );
        }
        Ok(VerificationResult::from_bool(same_identity && signed && admitted))
    }
}
