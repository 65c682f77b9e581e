// etcd's v2 error codes, their messages and HTTP statuses, and the error a v2 operation answers with: JSON
// {"errorCode","message","cause","index"} where index is the store index when the error happened.

export const V2Code = {
  KeyNotFound: 100,
  TestFailed: 101,
  NotFile: 102,
  NotDir: 104,
  NodeExist: 105,
  RootReadOnly: 107,
  DirNotEmpty: 108,
  Unauthorized: 110,
  PrevValueRequired: 201,
  TtlNaN: 202,
  IndexNaN: 203,
  InvalidField: 209,
  InvalidForm: 210,
  RefreshValue: 211,
  RefreshTtlRequired: 212,
  RaftInternal: 300,
  LeaderElect: 301,
  EventIndexCleared: 401,
} as const;

const MESSAGES: Readonly<Record<number, string>> = {
  100: "Key not found",
  101: "Compare failed",
  102: "Not a file",
  104: "Not a directory",
  105: "Key already exists",
  107: "Root is read only",
  108: "Directory not empty",
  110: "The request requires user authentication",
  201: "PrevValue is Required in POST form",
  202: "The given TTL in POST form is not a number",
  203: "The given index in POST form is not a number",
  209: "Invalid field",
  210: "Invalid POST form",
  211: "Value provided on refresh",
  212: "A TTL must be provided on refresh",
  300: "Raft Internal Error",
  301: "During Leader Election",
  401: "The event in requested index is outdated and cleared",
};

/** etcd's status per code; every other code answers 400. */
const STATUS: Readonly<Record<number, number>> = {
  100: 404,
  102: 403,
  108: 403,
  110: 401,
  101: 412,
  105: 412,
  300: 500,
  301: 500,
};

export interface V2ErrorJson {
  readonly errorCode: number;
  readonly message: string;
  readonly cause?: string;
  readonly index: number;
}

export class V2Error extends Error {
  readonly errorCode: number;
  override readonly cause: string;
  readonly index: number;

  constructor(errorCode: number, cause: string, index: number) {
    super(`${MESSAGES[errorCode] ?? "Unknown error"} (${cause})`);
    this.name = "V2Error";
    this.errorCode = errorCode;
    this.cause = cause;
    this.index = index;
  }

  get status(): number {
    return STATUS[this.errorCode] ?? 400;
  }

  /** Go's encoding drops an empty cause (omitempty) and keeps index even when 0. */
  toJSON(): V2ErrorJson {
    const message = MESSAGES[this.errorCode] ?? "Unknown error";
    return this.cause === ""
      ? { errorCode: this.errorCode, message, index: this.index }
      : { errorCode: this.errorCode, message, cause: this.cause, index: this.index };
  }

  static fromJSON(j: V2ErrorJson): V2Error {
    return new V2Error(j.errorCode, j.cause ?? "", j.index);
  }
}
