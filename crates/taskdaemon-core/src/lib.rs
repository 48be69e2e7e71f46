//! The pure domain of taskdaemon.
//!
//! Everything here is free of I/O so that the rules of the system (which id a
//! task gets, which status may follow which, what happens when a supervised
//! process exits, what a rehydrate summary keeps when the budget is tight) live
//! in one place and can be property-tested. The store, the supervisor and the
//! interfaces all call into this crate instead of restating a rule.

pub mod branch;
pub mod compact;
pub mod config_version;
pub mod container;
pub mod decay;
pub mod duration;
pub mod event;
pub mod gate;
pub mod graph;
pub mod id;
pub mod limits;
pub mod links;
pub mod loops;
pub mod next;
pub mod pipeline;
pub mod process;
pub mod queue;
pub mod rehydrate;
pub mod snapshot;
pub mod status;
pub mod sync;
pub mod task;
pub mod time;
pub mod tracked;

pub use config_version::{CONFIG_ALERT_PREFIX, ConfigVersion, NewConfigVersion};
pub use container::{ContainerSpec, ExecMode, Mount};
pub use event::{Event, EventKind, NewEvent};
pub use id::{HumanId, IdError};
pub use limits::ResourceLimits;
pub use links::{Claim, LinkKind, Rollup, TaskLink};
pub use loops::{LoopEnd, LoopIteration, LoopRecord, NewLoop};
pub use pipeline::{
    Delivery, IllegalPipelineTransition, MessageKind, MessageRecord, NewMessage, NewPhase, NewPlan,
    NewSpec, PhaseRecord, PipelineCost, PipelineError, PipelineRef, PipelineStatus, PlanContent,
    PlanRecord, PlanTree, RecipientDelivery, SpecRecord, SpecTree,
};
pub use process::{ExitDecision, ExitOutcome, ProcessIdentity, RestartMode, RestartPolicy};
pub use queue::{NewAgent, QueueCounts, QueueItem};
pub use status::{IllegalTransition, Status};
pub use task::{NewProcess, TaskKind, TaskRecord};
pub use tracked::{
    Memory, MemoryKind, NewMemory, NewTracked, TrackedAction, TrackedEdit, TrackedView,
};
