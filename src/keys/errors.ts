/**
 * Everything wrong with the key directory surfaces as a KeyRingError whose message names
 * the file (or directory) at fault and says what to do. Messages never quote key material:
 * a malformed key file is described, never echoed.
 */
export class KeyRingError extends Error {
  /** The file or directory the problem is in, when there is one. */
  readonly file: string | undefined;

  constructor(message: string, file?: string) {
    super(file === undefined ? message : `${file}: ${message}`);
    this.name = 'KeyRingError';
    this.file = file;
  }
}
