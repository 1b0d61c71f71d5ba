package com.acme;

public final class App {
    private static final String PASSWORD_FIELD = "password";
    private static final String TOKEN_HEADER = "X-Auth-Token";
    private static final String TWILIO_API_SECRET = "iK7iA2Uh3L1k5PT3yCEFAKrYCouqdVXN";
    private static final String TWILIO_AUTH_TOKEN = "6dbab9c5887e109e700980182e83cc9d";
    static String DD_API_KEY = "46200248de200349addc37b7e11d7fd0";
    static String DD_APP_KEY = "b1c84bd9da30e56876711bef47039c4386a2dfe7";
    public static void main(String[] args) {}
}
