/** The kinds of state change. */
export declare enum StateEventType {
  Created = 'state:created',
  Updated = 'state:updated',
  Deleted = 'state:deleted',
}

export interface StateGetInput { scope: string; key: string }
export interface StateSetInput { scope: string; key: string; value: unknown }
export interface StateDeleteInput { scope: string; key: string }
export interface StateListInput { scope: string }
export interface StateUpdateInput { scope: string; key: string; ops: unknown[] }
export interface StateSetResult<TData> { old_value?: TData; new_value: TData }
export interface StateUpdateResult<TData> { old_value?: TData; new_value: TData }
export interface StateDeleteResult { old_value?: unknown }
export interface StateEventData<TData = unknown> {
  type: 'state'
  event_type: StateEventType
  scope: string
  key: string
  old_value?: TData
  new_value?: TData
}

/** A state store. */
export interface IState {
  get<TData>(input: StateGetInput): Promise<TData | null>
  set<TData>(input: StateSetInput): Promise<StateSetResult<TData> | null>
  delete(input: StateDeleteInput): Promise<StateDeleteResult>
  list<TData>(input: StateListInput): Promise<TData[]>
  update<TData>(input: StateUpdateInput): Promise<StateUpdateResult<TData> | null>
}
