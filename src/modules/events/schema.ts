// STUB — replaced by the events work (issue 4).
export {};
