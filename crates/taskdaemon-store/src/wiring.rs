//! The [`Store`](crate::Store) methods whose wiring is the same for every
//! backend, written once.
//!
//! A status change goes through the backend's `change_task` (read or lock
//! the task, let a rule of [`crate::lifecycle`] or [`crate::changes`] decide,
//! apply what it decided, read the task again).
//!
//! Each backend has the same submodules (`processes`, `events`, `queue`,
//! `tracked`, `loops`, `memory`, `search`, `history`, `transfer`, `claim`)
//! with the same functions, and `read`, `read_events`, `read_for_check` and `write` methods
//! that run a closure in one transaction. [`shared_store_methods!`] expands,
//! inside each backend's `impl Store`, to every method that only hands its
//! arguments to one of those functions; the backend writes the rest (its
//! own SQL, sequencing, backups and waiters) beside it. Paths in the macro
//! resolve where it is expanded, so `tracked::create` is the backend's own.

/// Every `Store` method that is one call into the backend's submodules.
macro_rules! shared_store_methods {
    () => {
        fn create_process(&self, spec: &NewProcess, actor: &str) -> Result<TaskRecord> {
            self.write(|tx| processes::create(tx, spec, actor))
        }

        fn task(&self, id: &str) -> Result<TaskRecord> {
            self.read(|tx| load_task(tx, id))
        }

        fn processes(&self, filter: &ProcessFilter) -> Result<Vec<TaskRecord>> {
            self.read(|tx| processes::list(tx, filter))
        }

        fn running_items(&self) -> Result<Vec<taskdaemon_core::rehydrate::RunningItem>> {
            self.read(|tx| processes::running_items(tx))
        }

        fn finished_tasks(
            &self,
            since: taskdaemon_core::time::Millis,
            after_uuid: &str,
            limit: usize,
        ) -> Result<Vec<crate::FinishedTask>> {
            self.read(|tx| queue::finished(tx, since, after_uuid, limit))
        }

        fn task_page(&self, filter: &crate::TaskPageFilter) -> Result<Vec<TaskRecord>> {
            self.read(|tx| processes::page(tx, filter))
        }

        fn mark_started(
            &self,
            id: &str,
            restarts: u32,
            started: &Started,
            actor: &str,
        ) -> Result<TaskRecord> {
            self.write(|tx| {
                change_task(tx, id, |_, task| {
                    lifecycle::started(task, restarts, started, now_millis(), actor)
                })
            })
        }

        fn record_start_failure(&self, id: &str, error: &str, actor: &str) -> Result<TaskRecord> {
            let (status, kind) = (Status::Failed, EventKind::StartFailed);
            self.write(|tx| {
                let failed = Change::ended_with_error(status, kind, error, now_millis(), actor);
                change_task(tx, id, |_, _| Ok(failed))
            })
        }

        fn record_exit(
            &self,
            id: &str,
            pid: i32,
            outcome: ExitOutcome,
            reason: Option<&str>,
            actor: &str,
        ) -> Result<ExitRecorded> {
            self.write(|tx| processes::record_exit(tx, id, pid, outcome, reason, None, actor))
        }

        fn record_detected_exit(
            &self,
            id: &str,
            exit: &crate::DetectedExit,
            actor: &str,
        ) -> Result<ExitRecorded> {
            self.write(|tx| {
                let reason = exit.reason.as_deref();
                let at = Some(exit.exited_at_us);
                processes::record_exit(tx, id, exit.pid, exit.outcome, reason, at, actor)
            })
        }

        fn exit_timings(&self) -> Result<Vec<crate::ExitTiming>> {
            self.read_events(|tx| events::exit_timings(tx))
        }

        fn request_stop(&self, id: &str, actor: &str) -> Result<TaskRecord> {
            self.write(|tx| processes::request_stop(tx, id, actor))
        }

        fn reopen_for_restart(&self, id: &str, actor: &str) -> Result<TaskRecord> {
            self.write(|tx| change_task(tx, id, |_, task| lifecycle::reopen(task, actor)))
        }

        fn set_container_id(&self, id: &str, container_id: &str) -> Result<TaskRecord> {
            self.write(|tx| processes::set_container_id(tx, id, container_id))
        }

        fn mark_lost(&self, id: &str, reason: &str, actor: &str) -> Result<TaskRecord> {
            let (status, kind) = (Status::Lost, EventKind::Lost);
            self.write(|tx| {
                let lost = Change::ended_with_error(status, kind, reason, now_millis(), actor);
                change_task(tx, id, |_, _| Ok(lost))
            })
        }

        fn events_after(
            &self,
            after_seq: i64,
            kinds: &[EventKind],
            limit: usize,
        ) -> Result<Vec<Event>> {
            self.read_events(|tx| events::after(tx, after_seq, kinds, limit))
        }

        fn newest_events_after(
            &self,
            after_seq: i64,
            kinds: &[EventKind],
            limit: usize,
        ) -> Result<Vec<Event>> {
            self.read_events(|tx| events::newest_after(tx, after_seq, kinds, limit))
        }

        fn newest_event_tasks(
            &self,
            after_seq: i64,
            kinds: &[EventKind],
            limit: usize,
        ) -> Result<Vec<crate::EventTask>> {
            self.read_events(|tx| events::newest_tasks(tx, after_seq, kinds, limit))
        }

        fn newest_untasked_event(
            &self,
            kinds: &[EventKind],
            prefix: &str,
            lookback: usize,
        ) -> Result<Option<Event>> {
            self.read_events(|tx| events::newest_untasked(tx, kinds, prefix, lookback))
        }

        fn newest_ended(&self, after_seq: i64, limit: usize) -> Result<Vec<crate::EndedRef>> {
            self.read_events(|tx| events::newest_ended(tx, after_seq, limit))
        }

        fn ended_items(
            &self,
            ended: &[crate::EndedRef],
        ) -> Result<Vec<taskdaemon_core::rehydrate::EndedItem>> {
            if ended.is_empty() {
                return Ok(Vec::new());
            }
            self.read(|tx| processes::ended_items(tx, ended))
        }

        fn compact_tracked(
            &self,
            summaries: &[taskdaemon_core::decay::CompactSummary],
            actor: &str,
        ) -> Result<Vec<TaskRecord>> {
            self.write(|tx| tracked::compact(tx, summaries, actor))
        }

        fn restore_tracked(&self, id: &str, actor: &str) -> Result<TaskRecord> {
            self.write(|tx| tracked::restore(tx, id, actor))
        }

        fn task_original(&self, id: &str) -> Result<Option<taskdaemon_core::decay::Original>> {
            self.read(|tx| tracked::original(tx, id))
        }

        fn compact_candidates(
            &self,
            cutoff: taskdaemon_core::time::Millis,
            limit: usize,
        ) -> Result<Vec<TaskRecord>> {
            self.read(|tx| tracked::compact_candidates(tx, cutoff, limit))
        }

        fn merge_tracked(
            &self,
            tasks: &[crate::ExportedTask],
            counters: &[(String, i64)],
            actor: &str,
        ) -> Result<crate::MergeReport> {
            self.write(|tx| transfer::merge_tracked(tx, tasks, counters, actor))
        }

        fn create_tracked(&self, new: &NewTracked, actor: &str) -> Result<TaskRecord> {
            self.write(|tx| tracked::create(tx, new, actor))
        }

        fn add_gates(
            &self,
            task: &str,
            new: &[taskdaemon_core::gate::NewGate],
            actor: &str,
        ) -> Result<Vec<taskdaemon_core::gate::Gate>> {
            self.write(|tx| {
                let mut added = Vec::with_capacity(new.len());
                for gate in new {
                    added.push(gates::add(tx, task, gate, actor)?);
                }
                Ok(added)
            })
        }

        fn remove_gates(
            &self,
            task: &str,
            seq: Option<i64>,
            actor: &str,
        ) -> Result<Vec<taskdaemon_core::gate::Gate>> {
            self.write(|tx| gates::remove(tx, task, seq, actor))
        }

        fn approve_gates(
            &self,
            task: &str,
            actor: &str,
        ) -> Result<Vec<taskdaemon_core::gate::Gate>> {
            self.write(|tx| gates::approve(tx, task, actor))
        }

        fn gates(&self, task: &str) -> Result<Vec<taskdaemon_core::gate::Gate>> {
            self.read(|tx| gates::list(tx, task))
        }

        fn shut_gates(&self) -> Result<Vec<taskdaemon_core::gate::Gate>> {
            self.read(|tx| gates::shut(tx))
        }

        fn resolve_gate(
            &self,
            task: &str,
            seq: i64,
            outcome: &taskdaemon_core::gate::GateOutcome,
            actor: &str,
        ) -> Result<taskdaemon_core::gate::Gate> {
            self.write(|tx| gates::resolve(tx, task, seq, outcome, actor))
        }

        fn add_dependency(&self, task: &str, depends_on: &str, actor: &str) -> Result<TaskRecord> {
            self.write(|tx| tracked::add_dependency(tx, task, depends_on, actor))
        }

        fn remove_dependency(
            &self,
            task: &str,
            depends_on: &str,
            actor: &str,
        ) -> Result<TaskRecord> {
            self.write(|tx| tracked::remove_dependency(tx, task, depends_on, actor))
        }

        fn act_on_tracked(
            &self,
            id: &str,
            action: &TrackedAction,
            actor: &str,
        ) -> Result<TaskRecord> {
            self.write(|tx| {
                change_task(tx, id, |tx, task| {
                    let deps = &task.depends_on;
                    let unmet = || {
                        Ok(changes::unmet_list(&tracked::dependency_statuses(
                            tx, deps,
                        )?))
                    };
                    changes::tracked_action(task, action, unmet, now_millis(), actor)
                })
            })
        }

        fn edit_tracked(&self, id: &str, edit: &TrackedEdit, actor: &str) -> Result<TaskRecord> {
            self.write(|tx| tracked::edit(tx, id, edit, actor))
        }

        fn add_task_files(&self, id: &str, files: &[String], actor: &str) -> Result<TaskRecord> {
            self.write(|tx| tracked::add_files(tx, id, files, actor))
        }

        fn tracked(&self, filter: &TrackedFilter) -> Result<Vec<TaskRecord>> {
            self.read(|tx| tracked::list(tx, filter))
        }

        fn link_tasks(
            &self,
            from: &str,
            kind: taskdaemon_core::LinkKind,
            to: &str,
            actor: &str,
        ) -> Result<TaskRecord> {
            self.write(|tx| {
                links::lock_graph(tx)?;
                links::link(tx, from, kind, to, actor)
            })
        }

        fn unlink_tasks(
            &self,
            from: &str,
            kind: Option<taskdaemon_core::LinkKind>,
            to: &str,
            actor: &str,
        ) -> Result<TaskRecord> {
            self.write(|tx| {
                links::lock_graph(tx)?;
                links::unlink(tx, from, kind, to, actor)
            })
        }

        fn next_candidates(&self) -> Result<Vec<taskdaemon_core::next::NextCandidate>> {
            self.read(|tx| links::next_candidates(tx))
        }

        fn open_graph(&self) -> Result<Vec<taskdaemon_core::graph::OpenNode>> {
            self.read(|tx| links::open_graph(tx))
        }

        fn claim_tracked(
            &self,
            id: Option<&str>,
            claimant: &str,
            lease_ms: taskdaemon_core::time::Millis,
            actor: &str,
        ) -> Result<Option<TaskRecord>> {
            self.write(|tx| {
                links::lock_claims(tx)?;
                let id = match id {
                    Some(id) => id.to_owned(),
                    None => match taskdaemon_core::next::pick_next(links::next_candidates(tx)?) {
                        Some(pick) => pick.task.id,
                        None => return Ok(None),
                    },
                };
                links::claim(tx, &id, claimant, lease_ms, actor).map(Some)
            })
        }

        fn renew_claims(
            &self,
            claimant: &str,
            lease_ms: taskdaemon_core::time::Millis,
        ) -> Result<u64> {
            self.write(|tx| links::renew_claims(tx, claimant, now_millis() + lease_ms))
        }

        fn stale_claims(&self) -> Result<Vec<TaskRecord>> {
            self.read(|tx| links::stale_claims(tx, now_millis()))
        }

        fn ready(&self, limit: usize) -> Result<Vec<TaskRecord>> {
            self.read(|tx| tracked::ready(tx, limit))
        }

        fn current_candidates(&self, session: Option<&str>) -> Result<Vec<TaskRecord>> {
            self.read(|tx| tracked::current_candidates(tx, session))
        }

        fn recently_succeeded(&self, limit: usize) -> Result<Vec<TaskRecord>> {
            self.read(|tx| tracked::recently_succeeded(tx, limit))
        }

        fn remember(&self, new: &NewMemory, actor: &str) -> Result<Memory> {
            self.write(|tx| memory::remember(tx, new, actor))
        }

        fn memories(&self, filter: &MemoryFilter) -> Result<Vec<Memory>> {
            self.read(|tx| memory::memories(tx, filter))
        }

        fn memory_by_key(&self, key: &str) -> Result<Option<Memory>> {
            self.read(|tx| memory::by_key(tx, key))
        }

        fn search(&self, query: &str, limit: usize) -> Result<Vec<SearchHit>> {
            self.read_events(|tx| search::search(tx, query, limit))
        }

        fn touch_session(&self, session: &str, tool: Option<&str>) -> Result<()> {
            self.write(|tx| memory::touch_session(tx, session, tool, now_millis()))
        }

        fn end_session(&self, session: &str, actor: &str) -> Result<Session> {
            self.write(|tx| memory::end_session(tx, session, actor))
        }

        fn session(&self, session: &str) -> Result<Option<Session>> {
            self.read(|tx| memory::load_session(tx, session))
        }

        fn latest_session(&self) -> Result<Option<Session>> {
            self.read(memory::latest_session)
        }

        fn record_config_version(
            &self,
            new: &NewConfigVersion,
            actor: &str,
        ) -> Result<ConfigVersion> {
            self.write(|tx| loops::record_config(tx, new, actor))
        }

        fn config_versions(&self, limit: usize) -> Result<Vec<ConfigVersion>> {
            self.read(|tx| loops::config_versions(tx, limit))
        }

        fn config_version(&self, version: i64) -> Result<ConfigVersion> {
            self.read(|tx| loops::config_version(tx, version))
        }

        fn create_loop(&self, new: &NewLoop, actor: &str) -> Result<LoopRecord> {
            self.write(|tx| loops::create(tx, new, actor))
        }

        fn loop_record(&self, id: &str) -> Result<LoopRecord> {
            self.read(|tx| loops::load(tx, id))
        }

        fn loops(&self, all: bool) -> Result<Vec<LoopRecord>> {
            self.read(|tx| loops::list(tx, all))
        }

        fn mark_loop_running(
            &self,
            id: &str,
            next_iteration: u32,
            actor: &str,
        ) -> Result<LoopRecord> {
            self.write(|tx| loops::mark_running(tx, id, next_iteration, actor))
        }

        fn record_loop_iteration(
            &self,
            id: &str,
            iteration: &LoopIteration,
            actor: &str,
        ) -> Result<bool> {
            self.write(|tx| loops::record_iteration(tx, id, iteration, actor))
        }

        fn finish_loop(&self, id: &str, end: &LoopEnd, actor: &str) -> Result<LoopRecord> {
            self.write(|tx| loops::finish(tx, id, end, actor))
        }

        fn history_page(
            &self,
            filter: &HistoryFilter,
            after_seq: i64,
            limit: usize,
        ) -> Result<Vec<Event>> {
            self.read_events(|tx| {
                let mut filter = filter.clone();
                if let Some(task) = &filter.task_id {
                    filter.task_id = Some(resolve_id(tx, task)?);
                }
                history::page(tx, &filter, after_seq, limit)
            })
        }

        fn check_integrity(&self) -> Result<IntegrityReport> {
            self.read_for_check(transfer::check)
        }

        fn create_agent(&self, spec: &NewAgent, actor: &str) -> Result<TaskRecord> {
            self.write(|tx| queue::create_agent(tx, spec, false, actor))
        }

        fn queue_item(&self, task_id: &str) -> Result<QueueItem> {
            self.read(|tx| queue::item(tx, task_id))
        }

        fn open_queue_items(&self, queue: &str) -> Result<Vec<QueueItem>> {
            self.read(|tx| queue::open_items(tx, queue))
        }

        fn finish_queue_item(
            &self,
            task_id: &str,
            result: &serde_json::Value,
            _actor: &str,
        ) -> Result<QueueItem> {
            self.write(|tx| queue::finish(tx, task_id, result))
        }

        fn queue_counts(&self) -> Result<Vec<QueueCounts>> {
            self.read(queue::counts)
        }

        fn submit(&self, spec: &NewAgent, actor: &str) -> Result<TaskRecord> {
            self.write(|tx| queue::create_agent(tx, spec, true, actor))
        }

        fn register_worker(&self, worker: &WorkerInfo) -> Result<()> {
            self.write(|tx| claim::register(tx, worker))
        }

        fn heartbeat(
            &self,
            worker: &str,
            tasks: &[String],
            lease: Duration,
        ) -> Result<Vec<HeldLease>> {
            self.write(|tx| claim::heartbeat(tx, worker, tasks, lease))
        }

        fn stop_worker(&self, worker: &str) -> Result<()> {
            self.write(|tx| claim::stop(tx, worker))
        }

        fn workers(&self) -> Result<Vec<WorkerRecord>> {
            self.read(claim::workers)
        }

        // One claim or completion is a batch of one: one path for both.
        fn claim(&self, worker: &str, queues: &[String], lease: Duration) -> Result<Option<Claim>> {
            Ok(self.claim_batch(worker, queues, lease, 1)?.pop())
        }

        fn claim_batch(
            &self,
            worker: &str,
            queues: &[String],
            lease: Duration,
            max: usize,
        ) -> Result<Vec<Claim>> {
            let max = max.min(crate::MAX_BATCH);
            if max == 0 {
                return Ok(Vec::new());
            }
            let claims = self.write(|tx| claim::claim_batch(tx, worker, queues, lease, max))?;
            if !claims.is_empty() {
                self.events_committed();
            }
            Ok(claims)
        }

        fn complete_claim(
            &self,
            lease: &Lease,
            outcome: ExitOutcome,
            result: &serde_json::Value,
        ) -> Result<ClaimCompleted> {
            let end = crate::Completion {
                lease: lease.clone(),
                outcome,
                result: result.clone(),
            };
            self.complete_claims(std::slice::from_ref(&end))?
                .pop()
                .unwrap_or_else(|| Err(StoreError::NotFound(lease.task_id.clone())))
        }

        fn complete_claims(
            &self,
            ends: &[crate::Completion],
        ) -> Result<Vec<Result<ClaimCompleted>>> {
            if ends.len() > crate::MAX_BATCH {
                return Err(StoreError::Invalid(format!(
                    "{} completions in one batch; at most {} are allowed",
                    ends.len(),
                    crate::MAX_BATCH
                )));
            }
            if ends.is_empty() {
                return Ok(Vec::new());
            }
            let answers = self.write(|tx| claim::complete_batch(tx, ends))?;
            self.events_committed();
            Ok(answers)
        }

        fn release_expired(&self, actor: &str) -> Result<Vec<Released>> {
            self.write(|tx| claim::release_expired(tx, actor))
        }

        fn create_plan(
            &self,
            new: &taskdaemon_core::NewPlan,
            actor: &str,
        ) -> Result<taskdaemon_core::PlanRecord> {
            self.write(|tx| pipeline::create_plan(tx, new, actor))
        }

        fn submit_plan(
            &self,
            plan: &str,
            content: &taskdaemon_core::PlanContent,
            actor: &str,
        ) -> Result<taskdaemon_core::PlanRecord> {
            self.write(|tx| pipeline::submit(tx, plan, content, actor))
        }

        fn plan(&self, id: &str) -> Result<taskdaemon_core::PlanRecord> {
            self.read(|tx| pipeline::load_plan(tx, id))
        }

        fn plans(&self, filter: &crate::PlanFilter) -> Result<Vec<taskdaemon_core::PlanRecord>> {
            self.read(|tx| pipeline::list_plans(tx, filter))
        }

        fn plan_tree(&self, id: &str) -> Result<taskdaemon_core::PlanTree> {
            self.read(|tx| pipeline::tree(tx, id))
        }

        fn approve_plan(&self, id: &str, actor: &str) -> Result<taskdaemon_core::PlanRecord> {
            self.write(|tx| pipeline::approve(tx, id, actor))
        }

        fn cancel_plan(
            &self,
            id: &str,
            reason: &str,
            actor: &str,
        ) -> Result<taskdaemon_core::PlanTree> {
            self.write(|tx| pipeline::cancel(tx, id, reason, actor))
        }

        fn resume_plan(&self, id: &str, actor: &str) -> Result<taskdaemon_core::PlanTree> {
            self.write(|tx| pipeline::resume(tx, id, actor))
        }

        fn set_plan_status(
            &self,
            id: &str,
            to: taskdaemon_core::PipelineStatus,
            note: Option<&str>,
            actor: &str,
        ) -> Result<taskdaemon_core::PlanRecord> {
            self.write(|tx| pipeline::set_plan_status(tx, id, to, note, actor))
        }

        fn add_specs(
            &self,
            plan: &str,
            specs: &[taskdaemon_core::NewSpec],
            actor: &str,
        ) -> Result<Vec<taskdaemon_core::SpecRecord>> {
            self.write(|tx| pipeline::add_specs(tx, plan, specs, actor))
        }

        fn spec(&self, id: &str) -> Result<taskdaemon_core::SpecRecord> {
            self.read(|tx| pipeline::load_spec(tx, id))
        }

        fn set_spec_status(
            &self,
            id: &str,
            to: taskdaemon_core::PipelineStatus,
            note: Option<&str>,
            actor: &str,
        ) -> Result<taskdaemon_core::SpecRecord> {
            self.write(|tx| pipeline::set_spec_status(tx, id, to, note, actor))
        }

        fn add_phases(
            &self,
            spec: &str,
            phases: &[taskdaemon_core::NewPhase],
            actor: &str,
        ) -> Result<Vec<taskdaemon_core::PhaseRecord>> {
            self.write(|tx| pipeline::add_phases(tx, spec, phases, actor))
        }

        fn phase(&self, id: &str) -> Result<taskdaemon_core::PhaseRecord> {
            self.read(|tx| pipeline::load_phase(tx, id))
        }

        fn set_phase_status(
            &self,
            id: &str,
            to: taskdaemon_core::PipelineStatus,
            note: Option<&str>,
            actor: &str,
        ) -> Result<taskdaemon_core::PhaseRecord> {
            self.write(|tx| pipeline::set_phase_status(tx, id, to, note, actor))
        }

        fn set_pipeline_loop(&self, id: &str, loop_task: Option<&str>) -> Result<()> {
            self.write(|tx| pipeline::set_loop(tx, id, loop_task))
        }

        fn pipeline_loops(&self, plan: &str) -> Result<Vec<(String, String)>> {
            self.read(|tx| pipeline::loops_of(tx, plan))
        }

        fn add_pipeline_cost(&self, id: &str, cost: &taskdaemon_core::PipelineCost) -> Result<()> {
            self.write(|tx| pipeline::add_cost(tx, id, cost))
        }

        fn ready_specs(&self, limit: usize) -> Result<Vec<taskdaemon_core::SpecRecord>> {
            self.read(|tx| pipeline::ready(tx, limit))
        }

        fn send_message(
            &self,
            new: &taskdaemon_core::NewMessage,
            actor: &str,
        ) -> Result<taskdaemon_core::MessageRecord> {
            self.write(|tx| pipeline::send(tx, new, actor))
        }

        fn message(&self, id: &str) -> Result<taskdaemon_core::MessageRecord> {
            self.read(|tx| pipeline::load_message(tx, id))
        }

        fn messages(
            &self,
            filter: &crate::MessageFilter,
        ) -> Result<Vec<taskdaemon_core::MessageRecord>> {
            self.read(|tx| pipeline::list_messages(tx, filter))
        }

        fn pending_messages(
            &self,
            plan: &str,
            recipient: &str,
        ) -> Result<Vec<taskdaemon_core::MessageRecord>> {
            self.read(|tx| pipeline::pending_for(tx, plan, recipient))
        }

        fn mark_message_delivered(
            &self,
            id: &str,
            actor: &str,
        ) -> Result<taskdaemon_core::MessageRecord> {
            let to = taskdaemon_core::Delivery::Delivered;
            self.write(|tx| pipeline::deliver(tx, id, to, None, actor))
        }

        fn answer_message(
            &self,
            id: &str,
            answer: &str,
            actor: &str,
        ) -> Result<taskdaemon_core::MessageRecord> {
            let to = taskdaemon_core::Delivery::Answered;
            self.write(|tx| pipeline::deliver(tx, id, to, Some(answer), actor))
        }

        fn dead_letter(
            &self,
            id: &str,
            reason: &str,
            actor: &str,
        ) -> Result<taskdaemon_core::MessageRecord> {
            let to = taskdaemon_core::Delivery::Dead;
            self.write(|tx| pipeline::deliver(tx, id, to, Some(reason), actor))
        }

        fn deliver_message(
            &self,
            id: &str,
            recipient: &str,
            actor: &str,
        ) -> Result<taskdaemon_core::MessageRecord> {
            let to = taskdaemon_core::Delivery::Delivered;
            self.write(|tx| pipeline::deliver_to(tx, id, recipient, to, None, actor))
        }

        fn dead_letter_for(
            &self,
            id: &str,
            recipient: &str,
            reason: &str,
            actor: &str,
        ) -> Result<taskdaemon_core::MessageRecord> {
            let to = taskdaemon_core::Delivery::Dead;
            self.write(|tx| pipeline::deliver_to(tx, id, recipient, to, Some(reason), actor))
        }

        fn settle_broadcasts(
            &self,
            plan: &str,
            actor: &str,
        ) -> Result<Vec<taskdaemon_core::MessageRecord>> {
            self.write(|tx| pipeline::settle_broadcasts(tx, plan, actor))
        }
    };
}

pub(crate) use shared_store_methods;
