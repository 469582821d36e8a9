// Frames the edge sends back to a station (HJ 212-2017 command codes 9011/9012/9014). Each answer is a
// complete frame with its own length and Appendix A CRC, and parses back with parseFrame.
import { hj212CrcHex } from './crc.ts';
import type { Hj212ErrorCode } from './errors.ts';
import type { Hj212Frame, Hj212Partial, Hj212Result, Hj212Version } from './frame.ts';
import { HJ212_DATA_CNS } from './readings.ts';

/** 9011 request answer, QnRtn (HJ 212-2017 request-answer code table). */
export const QN_RTN = {
  ready: 1,
  refused: 2,
  wrongPassword: 3,
  wrongMn: 4,
  wrongSt: 5,
  wrongFlag: 6,
  wrongQn: 7,
  wrongCn: 8,
  wrongCrc: 9,
  unknown: 100,
} as const;
export type QnRtn = (typeof QN_RTN)[keyof typeof QN_RTN];

/**
 * 9012 execution result, ExeRtn. protocols.md names ExeRtn but not its values; these three are the
 * HJ 212-2017 table as commonly quoted (1 success, 2 failed, 100 no data): check before relying on them.
 */
export const EXE_RTN = { ok: 1, failed: 2, noData: 100 } as const;
export type ExeRtn = (typeof EXE_RTN)[keyof typeof EXE_RTN];

/** The header fields an answer needs from the frame it answers. */
export type AnswerTo = Pick<Hj212Frame, 'qn' | 'pw' | 'mn'> & { version?: Hj212Version };

/** `##` + 4-digit byte length + segment + CRC + CRLF (HJ 212-2017 §6.3.1). */
export function encodeFrame(segment: string): string {
  const len = Buffer.byteLength(segment, 'utf8');
  // A programming error, not input: answers are built from frames that fitted in 1024 bytes.
  if (len > 9999) throw new RangeError(`an HJ 212 data segment cannot exceed 9999 bytes (got ${len})`);
  return `##${String(len).padStart(4, '0')}${segment}${hj212CrcHex(segment)}\r\n`;
}

/**
 * Answers carry no A bit, and the version bits of the station they answer, so a 2005 logger gets
 * Flag=0 and a 2025 one Flag=8; a 2017 (or unknown) one gets the Flag=4 protocols.md gives.
 */
function answerFlag(version: Hj212Version | undefined): number {
  return version === '2005' ? 0 : version === '2025' ? 8 : 4;
}

function answer(to: AnswerTo, cn: string, cp: string): string {
  // HJ 212-2017: an answer has the same QN as the request and ST=91 (system interaction).
  return encodeFrame(`QN=${to.qn};ST=91;CN=${cn};PW=${to.pw};MN=${to.mn};Flag=${answerFlag(to.version)};CP=&&${cp}&&`);
}

/** 9014 data answer to a data upload that asked for one (Flag A bit). */
export function dataAnswer(to: AnswerTo): string {
  return answer(to, '9014', '');
}

/** 9011 request answer with QnRtn. */
export function requestAnswer(to: AnswerTo, qnRtn: QnRtn): string {
  return answer(to, '9011', `QnRtn=${qnRtn}`);
}

/** 9012 execution result with ExeRtn. */
export function executionAnswer(to: AnswerTo, exeRtn: ExeRtn): string {
  return answer(to, '9012', `ExeRtn=${exeRtn}`);
}

/** 9013 notice answer. */
export function noticeAnswer(to: AnswerTo): string {
  return answer(to, '9013', '');
}

/** Which QnRtn tells the station why its frame was refused. */
export function qnRtnFor(code: Hj212ErrorCode, field?: string): QnRtn {
  if (code === 'HJ212_BAD_CRC') return QN_RTN.wrongCrc;
  if (code === 'HJ212_BAD_PASSWORD') return QN_RTN.wrongPassword;
  if (code === 'HJ212_BAD_FIELD') {
    if (field === 'QN') return QN_RTN.wrongQn;
    if (field === 'ST') return QN_RTN.wrongSt;
    if (field === 'CN') return QN_RTN.wrongCn;
    if (field === 'MN') return QN_RTN.wrongMn;
    if (field === 'PW') return QN_RTN.wrongPassword;
    if (field === 'Flag' || field === 'PNUM' || field === 'PNO') return QN_RTN.wrongFlag;
  }
  return QN_RTN.unknown;
}

/**
 * The answer owed for a parse result, or undefined when none is: a data upload with the A bit gets
 * 9014; a refused frame whose header still shows the A bit, a 17-digit QN and an MN gets 9011 with
 * the matching QnRtn (a frame whose header cannot be read cannot be addressed). Commands from a
 * station (2021, 1011 answers...) are the caller's business: this only covers data and refusals.
 * `refusedFor` lets the caller add a refusal of its own (wrong password, unknown MN).
 */
export function answerFor(result: Hj212Result, refusedFor?: { code: Hj212ErrorCode; field?: string; qnRtn?: QnRtn }): string | undefined {
  if (result.ok && refusedFor === undefined) {
    const f = result.frame;
    return f.ackWanted && HJ212_DATA_CNS[f.cn] && f.qn !== '' ? dataAnswer(f) : undefined;
  }
  const p: Hj212Partial = result.ok ? result.frame : (result.partial ?? {});
  if (!p.ackWanted || p.qn === undefined || p.qn === '' || p.mn === undefined) return undefined;
  const code = refusedFor?.code ?? (result.ok ? undefined : result.code);
  if (code === undefined) return undefined;
  const rtn = refusedFor?.qnRtn ?? qnRtnFor(code, refusedFor ? refusedFor.field : result.ok ? undefined : result.field);
  return requestAnswer({ qn: p.qn, pw: p.pw ?? '', mn: p.mn, version: p.version }, rtn);
}
