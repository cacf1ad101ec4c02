// STUB — replaced by the live sessions work (issue 3).
export {};
