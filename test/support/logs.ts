import { createLogger, type Logger } from '../../src/log.js';

/** A real pino logger whose lines are kept in memory, for assertions on what was logged. */
export function captureLogs(level = 'debug'): { logger: Logger; lines: string[]; text(): string; entries(): Record<string, unknown>[] } {
  const lines: string[] = [];
  const logger = createLogger({ level, destination: { write: (line: string) => void lines.push(line) } });
  return {
    logger,
    lines,
    text: () => lines.join(''),
    entries: () => lines.map((line) => JSON.parse(line) as Record<string, unknown>),
  };
}
