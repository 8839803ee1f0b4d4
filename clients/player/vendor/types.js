/** The protocol version these types describe. */
export const PROTOCOL_VERSION = 2;
//# sourceMappingURL=types.js.map