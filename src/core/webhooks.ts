// The per-application webhook secret (PRODUCT.md §11): how long it may be, and the additional data
// it is sealed with, so a sealed value copied to another application's row does not open.

export const WEBHOOK_SECRET_MIN = 16;
export const WEBHOOK_SECRET_MAX = 256;

export function webhookSecretAad(app: { namespace: string; name: string }): string {
  return `webhook secret v1\0${app.namespace}\0${app.name}`;
}
