// The HJ 212 decoder's public surface: frame → fields (frame.ts), byte stream → frames (stream.ts),
// fields → readings (readings.ts), answers owed to the station (answers.ts), password check (auth.ts).
export { HJ212_ERRORS, type Hj212ErrorCode } from './errors.ts';
export { hj212Crc, hj212CrcHex } from './crc.ts';
export {
  parseFrame,
  parseFrameBytes,
  chinaTimeToMs,
  versionOf,
  HJ212_MAX_SEGMENT_BYTES,
  HJ212_MAX_CP_PAIRS,
  type Hj212Frame,
  type Hj212Partial,
  type Hj212Refusal,
  type Hj212Result,
  type Hj212Version,
  type ParseFrameOptions,
} from './frame.ts';
export { Hj212StreamSplitter, type Hj212StreamItem, type Hj212SplitterOptions } from './stream.ts';
export {
  frameToReadings,
  FLAG_SEVERITY,
  HJ212_DATA_CNS,
  type Hj212Reading,
  type Hj212ReadingRefusal,
  type Hj212Readings,
  type FrameToReadingsOptions,
} from './readings.ts';
export {
  encodeFrame,
  dataAnswer,
  requestAnswer,
  executionAnswer,
  noticeAnswer,
  answerFor,
  qnRtnFor,
  QN_RTN,
  EXE_RTN,
  type QnRtn,
  type ExeRtn,
  type AnswerTo,
} from './answers.ts';
export { checkPassword, checkPasswordHash, type PasswordCheck } from './auth.ts';
