export * from './contract.ts';
export { MemoryQueue, createMemoryQueue } from './memory.ts';
export { DiskQueue, openDiskQueue } from './disk.ts';
