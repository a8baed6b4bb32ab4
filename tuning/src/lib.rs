//! `tpx-tuning`: host topology, the core plan and low-latency tuning checks (binary `tpx-tune`).
//!
//! Will hold (issue "deploy onto tuned c6i hosts"): `plan` from the hwlocality topology, `check`
//! with PASS / FAIL / N/A per item, and `apply` for what can be set at run time.
