// STUB — replaced by the settings work (issue 4).
export {};
