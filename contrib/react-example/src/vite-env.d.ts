/// <reference types="vite/client" />
interface ImportMetaEnv {
  /** Where pgpushd is, when not the page's own origin (the dev proxy makes it so). */
  readonly VITE_PGPUSHD_URL?: string;
}
