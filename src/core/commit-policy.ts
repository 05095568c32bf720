// The signed-commit policy of an application (PRODUCT.md §10): the branch head must be signed by one
// of `keys`. Registered with the application (the Store keeps it), enforced by the source.

export interface CommitVerification {
  type: 'ssh' | 'gpg';
  /** ssh: public keys (`ssh-ed25519 AAAA… comment`); gpg: ASCII-armoured public keys. */
  keys: string[];
}
