//! Sigil's Malachite context: the types consensus runs on.
//!
//! A validator's consensus [`Address`] is its Ed25519 ledger key (the key its TEE evidence binds), so a vote's
//! signer, a checkpoint's cosigner and an admitted node are one identity. The decided [`Value`](BlockId) is
//! a block's id (SHA-256 of its canonical encoding); the block itself travels as proposal parts and through
//! sync, and is re-validated by every validator before it votes.

use std::fmt;
use std::sync::Arc;

use bytes::Bytes;
use malachitebft_app_channel::app::types::core::{
    self as mc, LinearTimeouts, NilOrVal, Round, SignedExtension, VoteType, VotingPower,
};

pub use crate::types::{Address, BlockId, Height, PublicKey, Signature, Validator, ValidatorSet};

impl mc::Height for Height {
    const ZERO: Self = Height(0);
    const INITIAL: Self = Height(1);
    fn increment_by(&self, n: u64) -> Self {
        Height(self.0.saturating_add(n))
    }
    fn decrement_by(&self, n: u64) -> Option<Self> {
        self.0.checked_sub(n).map(Height)
    }
    fn as_u64(&self) -> u64 {
        self.0
    }
}

impl mc::Address for Address {}

impl mc::Value for BlockId {
    type Id = BlockId;
    fn id(&self) -> BlockId {
        *self
    }
}

/// A key or signature of the wrong length.
#[derive(Debug)]
pub struct DecodingError(pub String);

impl fmt::Display for DecodingError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// Ed25519, through `ring`.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub struct Ed25519;

impl mc::SigningScheme for Ed25519 {
    type DecodingError = DecodingError;
    type Signature = Signature;
    type PublicKey = PublicKey;
    /// The 32-byte seed; signing goes through [`crate::signing::PodSigner`].
    type PrivateKey = Arc<[u8; 32]>;

    fn decode_signature(bytes: &[u8]) -> Result<Signature, DecodingError> {
        bytes.try_into().map(Signature).map_err(|_| DecodingError(format!("a signature of {} bytes", bytes.len())))
    }
    fn encode_signature(signature: &Signature) -> Vec<u8> {
        signature.0.to_vec()
    }
    fn decode_public_key(bytes: &[u8]) -> Result<PublicKey, DecodingError> {
        bytes.try_into().map(PublicKey).map_err(|_| DecodingError(format!("a public key of {} bytes", bytes.len())))
    }
    fn encode_public_key(public_key: &PublicKey) -> Vec<u8> {
        public_key.0.to_vec()
    }
}

impl mc::Validator<PodContext> for Validator {
    fn address(&self) -> &Address {
        &self.address
    }
    fn public_key(&self) -> &PublicKey {
        &self.public_key
    }
    fn voting_power(&self) -> VotingPower {
        1
    }
}

impl mc::ValidatorSet<PodContext> for ValidatorSet {
    fn count(&self) -> usize {
        self.validators.len()
    }
    fn total_voting_power(&self) -> VotingPower {
        self.validators.len() as u64
    }
    fn get_by_address(&self, address: &Address) -> Option<&Validator> {
        self.validators.iter().find(|v| &v.address == address)
    }
    fn get_by_index(&self, index: usize) -> Option<&Validator> {
        self.validators.get(index)
    }
}

/// A proposal: the proposer asks the pod to decide `value` at (height, round).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Proposal {
    /// Height.
    pub height: Height,
    /// Round.
    pub round: Round,
    /// The proposed block's id.
    pub value: BlockId,
    /// The proof-of-lock round (Nil when none).
    pub pol_round: Round,
    /// Who proposes.
    pub proposer: Address,
}

impl mc::Proposal<PodContext> for Proposal {
    fn height(&self) -> Height {
        self.height
    }
    fn round(&self) -> Round {
        self.round
    }
    fn value(&self) -> &BlockId {
        &self.value
    }
    fn take_value(self) -> BlockId {
        self.value
    }
    fn pol_round(&self) -> Round {
        self.pol_round
    }
    fn validator_address(&self) -> &Address {
        &self.proposer
    }
}

/// A prevote or precommit.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Vote {
    /// Prevote or precommit.
    pub vote_type: VoteType,
    /// Height.
    pub height: Height,
    /// Round.
    pub round: Round,
    /// The block voted for, or nil.
    pub value: NilOrVal<BlockId>,
    /// The voter.
    pub validator: Address,
    /// The vote extension (precommits only; not covered by the vote's own signature).
    pub extension: Option<SignedExtension<PodContext>>,
}

impl mc::Vote<PodContext> for Vote {
    fn height(&self) -> Height {
        self.height
    }
    fn round(&self) -> Round {
        self.round
    }
    fn value(&self) -> &NilOrVal<BlockId> {
        &self.value
    }
    fn take_value(self) -> NilOrVal<BlockId> {
        self.value
    }
    fn vote_type(&self) -> VoteType {
        self.vote_type
    }
    fn validator_address(&self) -> &Address {
        &self.validator
    }
    fn extension(&self) -> Option<&SignedExtension<PodContext>> {
        self.extension.as_ref()
    }
    fn take_extension(&mut self) -> Option<SignedExtension<PodContext>> {
        self.extension.take()
    }
    fn extend(self, extension: SignedExtension<PodContext>) -> Self {
        Vote { extension: Some(extension), ..self }
    }
}

/// One part of a streamed proposal: `Init`, then the block's bytes in `Data` chunks, then `Fin` with the
/// proposer's signature over (height, round, block id). `Wake` rides the same channel but belongs to no stream.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ProposalPart {
    /// Opens the stream.
    Init {
        /// Height.
        height: Height,
        /// Round.
        round: Round,
        /// Proof-of-lock round of a re-proposed value.
        pol_round: Round,
        /// The proposer.
        proposer: Address,
    },
    /// A chunk of the block's canonical encoding.
    Data(Bytes),
    /// Closes the stream.
    Fin {
        /// The proposer's signature over the block id (see `signing::block_bytes`).
        signature: Signature,
    },
    /// Not part of a proposal: a validator with entries to commit asks the others to start `height` now rather
    /// than wait out an idle pod's interval (`app::idle`). Signed over `signing::wake_bytes`.
    Wake {
        /// The height to start.
        height: Height,
        /// The validator that asks.
        from: Address,
        /// Its signature.
        signature: Signature,
    },
    /// Not part of a proposal: a suspended node offers its `node_reinstated` entry (canonical encoding) to the
    /// validators, since it proposes no block itself (`app::streams`). Signed by the node over
    /// `signing::receipt_bytes` of the entry's leaf hash, as the block item carries it.
    Reinstate {
        /// The entry.
        entry: Bytes,
        /// The node's signature.
        signature: Signature,
    },
}

impl mc::ProposalPart<PodContext> for ProposalPart {
    fn is_first(&self) -> bool {
        matches!(self, ProposalPart::Init { .. })
    }
    fn is_last(&self) -> bool {
        matches!(self, ProposalPart::Fin { .. })
    }
}

/// Sigil's consensus context.
#[derive(Copy, Clone, Debug, Default)]
pub struct PodContext;

impl mc::Context for PodContext {
    type Address = Address;
    type Height = Height;
    type ProposalPart = ProposalPart;
    type Proposal = Proposal;
    type Validator = Validator;
    type ValidatorSet = ValidatorSet;
    type Timeouts = LinearTimeouts;
    type Value = BlockId;
    type Vote = Vote;
    /// A validator's signature over the checkpoint the block produces.
    type Extension = Bytes;
    type SigningScheme = Ed25519;

    /// Round-robin over the ledger's order: (height − 1 + round) mod n.
    fn select_proposer<'a>(&self, set: &'a ValidatorSet, height: Height, round: Round) -> &'a Validator {
        assert!(!set.validators.is_empty(), "a pod has at least one validator");
        let r = round.as_u32().unwrap_or(0) as u64;
        let i = (height.0.saturating_sub(1).wrapping_add(r) % set.validators.len() as u64) as usize;
        &set.validators[i]
    }

    fn new_proposal(
        &self,
        height: Height,
        round: Round,
        value: BlockId,
        pol_round: Round,
        address: Address,
    ) -> Proposal {
        Proposal { height, round, value, pol_round, proposer: address }
    }

    fn new_prevote(&self, height: Height, round: Round, value: NilOrVal<BlockId>, address: Address) -> Vote {
        Vote { vote_type: VoteType::Prevote, height, round, value, validator: address, extension: None }
    }

    fn new_precommit(&self, height: Height, round: Round, value: NilOrVal<BlockId>, address: Address) -> Vote {
        Vote { vote_type: VoteType::Precommit, height, round, value, validator: address, extension: None }
    }
}
