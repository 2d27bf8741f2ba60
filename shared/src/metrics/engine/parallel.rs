//! Every core: one partial engine per thread (placeholder; see the next commits).
