/** The admin token lives in sessionStorage only: gone when the tab closes, never in a cookie. */
const KEY = 'socket-base.admin-token';

export function savedToken(): string | null {
  return sessionStorage.getItem(KEY);
}

export function saveToken(token: string): void {
  sessionStorage.setItem(KEY, token);
}

export function forgetToken(): void {
  sessionStorage.removeItem(KEY);
}
