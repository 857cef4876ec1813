import { createContext, useCallback, useContext, useEffect, useState } from "react";
import type { ReactNode } from "react";
import { api, ApiError, unwrap, type User } from "../api/client";

interface Auth {
  user: User | null;
  loading: boolean;
  startGuest: () => Promise<void>;
  signIn: (identifier: string, password: string) => Promise<void>;
  /** A guest who signs up keeps their sessions: the gateway turns the guest into the account. */
  signUp: (identifier: string, password: string) => Promise<void>;
  signOut: () => Promise<void>;
}

const AuthContext = createContext<Auth | null>(null);

export function credentials(identifier: string, password: string) {
  const id = identifier.trim();
  return id.includes("@") ? { email: id, password } : { phone: id, password };
}

export function AuthProvider({ children }: { children: ReactNode }) {
  const [user, setUser] = useState<User | null>(null);
  const [loading, setLoading] = useState(true);

  useEffect(() => {
    let live = true;
    unwrap(api.GET("/api/auth/me"))
      .then((me) => live && setUser(me))
      .catch(() => live && setUser(null))
      .finally(() => live && setLoading(false));
    return () => {
      live = false;
    };
  }, []);

  const startGuest = useCallback(async () => {
    setUser((await unwrap(api.POST("/api/auth/guest"))).user);
  }, []);
  const signIn = useCallback(async (identifier: string, password: string) => {
    setUser((await unwrap(api.POST("/api/auth/login", { body: credentials(identifier, password) }))).user);
  }, []);
  const signUp = useCallback(async (identifier: string, password: string) => {
    setUser((await unwrap(api.POST("/api/auth/signup", { body: credentials(identifier, password) }))).user);
  }, []);
  const signOut = useCallback(async () => {
    try {
      await unwrap(api.POST("/api/auth/logout"));
    } catch (e) {
      if (!(e instanceof ApiError && e.status === 401)) throw e;
    }
    setUser(null);
  }, []);

  return (
    <AuthContext.Provider value={{ user, loading, startGuest, signIn, signUp, signOut }}>
      {children}
    </AuthContext.Provider>
  );
}

export function useAuth(): Auth {
  const value = useContext(AuthContext);
  if (!value) throw new Error("useAuth outside AuthProvider");
  return value;
}
