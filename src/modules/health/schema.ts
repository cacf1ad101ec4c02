// STUB — replaced by the health monitor work (issue 4).
export {};
